import sys

from apex_ai_proxy.cli import main

sys.exit(main())
