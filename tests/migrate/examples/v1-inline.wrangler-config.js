// A v1 config in the older shape: entries carry their own base_url and keys, several keys for
// one provider (the README's "Multiple API Keys"), and a service key. Strings hold `}` and `//`
// to show the literal is found by parsing, not by pattern.
const SERVICE_API_KEY = 'svc-SECRET-token-1';

const modelProviderConfig = {
  'DeepSeek-R1': {
    providers: [
      {
        provider: 'aliyuncs',
        base_url: 'https://dashscope.aliyuncs.com/compatible-mode/v1',
        api_keys: ['ali-SECRET-1', 'ali-SECRET-2', 'ali-SECRET-3'],
        model: 'deepseek-r1',
      },
      {
        provider: 'azure',
        base_url: 'https://res.services.ai.azure.com/models', /* } not the end */
        api_key: 'az-SECRET-}//-4',
        model: 'DeepSeek-R1',
      },
    ],
  },
};

module.exports = { modelProviderConfig, SERVICE_API_KEY };
