// The Key pool page: every provider key (named provider#n and its last 4 characters, never the
// key), its per-model quota rows from the quota-aware pool, a key × model heat map of what is
// left, and the timeline of 429s and 5xx per provider. Refreshes every 2 s from GET /admin/pool.
"use strict";

(function () {
  const { h, fmt, api, pages } = Console;
  const { chart, table, state } = Console.ui;

  const WINDOWS = [["rpm", "requests per minute"], ["rpd", "requests per day"],
    ["tpm", "tokens per minute"], ["tpd", "tokens per day"], ["max_parallel", "parallel requests"]];
  const WINDOW_TEXT = Object.fromEntries(WINDOWS);
  const OUT = new Set(["quota_exhausted", "rate_limited", "invalid", "degraded"]); // the model is not usable

  const keyName = (k) => k.key + (k.last4 ? " …" + k.last4 : "");
  const modelOf = (q) => q.unit.slice(q.unit.lastIndexOf("|") + 1);
  const stateText = (value) => value.replaceAll("_", " ");

  // "1 / 3" when the window is limited; "–" when it is not (nothing to run out of).
  function left(q, name) {
    const limit = q.limits && q.limits[name];
    if (!limit) return "–";
    return h("span", { title: `${fmt.int(q.remaining[name])} of ${fmt.int(limit)} ${WINDOW_TEXT[name]} left` },
      `${fmt.int(q.remaining[name])} / ${fmt.int(limit)}`);
  }

  // The time a model of a key comes back (its reset for a spent quota), as a clock and in words.
  function until(q) {
    if (!q.until) return "–";
    const label = q.state === "quota_exhausted" ? "resets " : "until ";
    return h("span.until", { title: fmt.time(q.until) }, label + fmt.clock(q.until));
  }

  // The windows columns: those limited on some key (a column of dashes says nothing).
  function quotaColumns(keys) {
    const limited = WINDOWS.filter(([name]) => keys.some((k) => (k.quota || []).some((q) => q.limits && q.limits[name])));
    const windows = limited.length
      ? limited.map(([name]) => [(name === "max_parallel" ? "parallel" : name) + " left", (q) => left(q, name), 1])
      : [["Left", () => "no limit", 1]];
    return [
      ["Model", (q) => h("span", { title: modelOf(q) }, modelOf(q))], ["State", (q) => state(q.state)],
      ["Reason", (q) => stateText(q.reason || "")], ["Until / reset", until], ...windows,
      ["Requests min/day", (q) => `${fmt.int(q.minute_requests)} / ${fmt.int(q.day_requests)}`, 1],
      ["Tokens min/day", (q) => `${fmt.int(q.minute_tokens)} / ${fmt.int(q.day_tokens)}`, 1],
    ];
  }

  const POOL_COLUMNS = [
    ["Key", keyName], ["Provider", (k) => k.provider],
    ["State", keyState], ["Reason", (k) => k.reason || ""],
    ["Until", (k) => fmt.clock(k.until)], ["Requests 1h", (k) => fmt.int(k.requests_1h), 1],
    ["429s 1h", (k) => fmt.int(k.rate_limited_1h), 1], ["Latency", (k) => fmt.ms(k.latency_ms), 1],
  ];

  // The key's own state, and how many of its models are out (their rows below say until when).
  function keyState(k) {
    const out = (k.quota || []).filter((q) => OUT.has(q.state)).length;
    return [state(k.state), out ? h("span.models-out", {}, ` ${out} model${out > 1 ? "s" : ""} out`) : null];
  }

  // The keys table, each key followed by a row holding its per-model quota table.
  function keysTable(keys) {
    const wrap = table(POOL_COLUMNS, keys);
    const columns = quotaColumns(keys);
    wrap.querySelectorAll("tbody > tr").forEach((tr, i) => {
      const key = keys[i];
      tr.setAttribute("data-key", key.key);
      if (!key.quota || !key.quota.length) return;
      const quota = table(columns, key.quota);
      quota.classList.add("quota");
      quota.querySelector("table").setAttribute("aria-label", `Quota of ${key.key} per model`);
      quota.querySelectorAll("tbody > tr").forEach((row, j) => {
        const q = key.quota[j];
        row.setAttribute("data-unit", q.unit);
        if (OUT.has(q.state)) row.classList.add("out");
      });
      tr.classList.add("has-quota");
      tr.after(h("tr.quota-row", { "data-quota-of": key.key },
        h("td", { colspan: POOL_COLUMNS.length }, quota)));
    });
    return wrap;
  }

  // --- heat map -------------------------------------------------------------------------------

  // The window whose share left is smallest: the one that runs out first.
  function tightest(q) {
    let best = null;
    for (const [name] of WINDOWS) {
      const limit = q.limits && q.limits[name];
      if (!limit) continue;
      const share = (q.remaining[name] || 0) / limit;
      if (!best || share < best.share) best = { name, limit, left: q.remaining[name] || 0, share };
    }
    return best;
  }

  function heatCell(key, q) {
    if (!q) return h("td.heat-cell.none", {}, h("span.sr", {}, `${key}: does not serve this model`));
    const model = modelOf(q);
    let shown, said, kind;
    if (OUT.has(q.state)) {
      kind = "out";
      const when = q.until ? (q.state === "quota_exhausted" ? "resets " : "until ") + fmt.clock(q.until) : "";
      shown = [h("b", {}, stateText(q.state)), when ? h("small", {}, when) : null];
      said = `${key} × ${model}: ${stateText(q.state)}${when ? ", " + when : ""}`;
    } else {
      const t = tightest(q);
      if (!t) {
        kind = "unlimited";
        shown = [h("b", {}, "no limit")];
        said = `${key} × ${model}: no limit configured`;
      } else {
        kind = "share";
        shown = [h("b", {}, `${fmt.int(t.left)} / ${fmt.int(t.limit)}`), h("small", {}, t.name)];
        said = `${key} × ${model}: ${fmt.int(t.left)} of ${fmt.int(t.limit)} ${WINDOW_TEXT[t.name]} left`
          + ` (${Math.round(t.share * 100)} %)` + (q.state === "ok" ? "" : ", " + stateText(q.state));
      }
    }
    const cell = h("td.heat-cell." + kind, { "data-unit": q.unit, title: said },
      h("span", { "aria-hidden": "true" }, shown), h("span.sr", {}, said));
    if (kind === "share") cell.style.setProperty("--share", String(tightest(q).share));
    return cell;
  }

  function heatMap(keys) {
    const rows = keys.filter((k) => k.quota && k.quota.length);
    if (!rows.length) return h("p.muted", { id: "heat-empty" }, "No key × model quota yet.");
    const models = [...new Set(rows.flatMap((k) => k.quota.map(modelOf)))].sort();
    const head = h("tr", {}, h("th", { scope: "col" }, "Key \\ model"),
      models.map((m) => h("th", { scope: "col" }, m)));
    const body = rows.map((k) => {
      const byModel = Object.fromEntries(k.quota.map((q) => [modelOf(q), q]));
      return h("tr", { "data-heat-key": k.key }, h("th", { scope: "row" }, keyName(k)),
        models.map((m) => heatCell(k.key, byModel[m])));
    });
    const legend = h("div.heat-legend", { "aria-hidden": "true" },
      h("span", {}, "share of the tightest limit left:"),
      h("span.scale", {}, h("span", {}, "0 %"), h("span.bar"), h("span", {}, "100 %")),
      h("span.heat-cell.unlimited.swatch", {}, "no limit"),
      h("span.heat-cell.out.swatch", {}, "exhausted / rate limited"));
    return h("div", {}, legend, h("div.table-wrap", {},
      h("table.heat", { "aria-label": "Remaining quota per key and model" },
        h("thead", {}, head), h("tbody", {}, body))));
  }

  // Replaces what `box` shows, keeping where its table was scrolled sideways (a phone scrolls
  // the wide tables: a refresh every 2 s must not throw it back to the first column).
  function redraw(box, content) {
    const before = box.querySelector(".table-wrap");
    const x = before ? before.scrollLeft : 0;
    box.replaceChildren(content);
    const after = box.querySelector(".table-wrap");
    if (after && x) after.scrollLeft = x;
  }

  // --- the page -------------------------------------------------------------------------------

  pages.pool = async function pool(main) {
    const holder = h("div", { id: "pool" });
    const heat = h("div", { id: "pool-heat" });
    const stamp = h("span.muted", { id: "pool-updated" });
    const timeline = h("div.charts", { id: "pool-timeline" });
    main.replaceChildren(h("h1", {}, "Key pool"),
      h("div.toolbar", {}, h("span.muted", {}, "Refreshes every 2 s · "), stamp), holder,
      h("h2", {}, "Remaining quota, key × model"), heat,
      h("h2", {}, "Failed attempts per provider, last hour"), timeline);
    let drawn = null;
    async function refresh() {
      const data = await api("GET", "/admin/pool");
      redraw(holder, keysTable(data.keys));
      redraw(heat, heatMap(data.keys));
      stamp.textContent = "updated " + fmt.clock(data.now);
      const line = data.timeline;
      const key = JSON.stringify(line);
      if (line && key !== drawn) { // redrawn only when it changed: no flicker every 2 s
        drawn = key;
        Console.charts = [];
        timeline.replaceChildren(
          chart("429s", line.t, Object.entries(line.rate_limited)),
          chart("5xx, timeouts, no answer", line.t, Object.entries(line.server_errors)));
      }
    }
    await refresh();
    Console.every(2000, () => refresh().catch(() => {}));
  };
})();
