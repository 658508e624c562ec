// The console's pages: each renders into `main` from the admin API (app.js: Console.api).
"use strict";

(function () {
  const { h, fmt, api, pages } = Console;

  function css(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }
  const PALETTE = ["#2f6fde", "#e0683a", "#1d9a6c", "#a855f7", "#d4a017", "#db2777", "#0891b2"];

  // One uPlot chart: `series` is [[label, values], ...] over the times `t` (epoch seconds).
  function chart(title, t, series, format) {
    const box = h("div.card.chart", {}, h("h3", {}, title));
    const plot = h("div.plot");
    box.append(plot);
    requestAnimationFrame(() => {
      const fg = css("--muted"), grid = css("--line");
      const axis = { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid } };
      // y from 0; an all-zero series gets 0..1, not uPlot's 0..100 (10000 % as a rate).
      const yRange = (u, min, max) => [0, max > 0 ? max * 1.1 : 1];
      const opts = {
        width: Math.max(plot.clientWidth, 260), height: 200,
        legend: { show: true },
        scales: { x: { time: true }, y: { range: yRange } },
        axes: [axis, { ...axis, size: 72, values: (u, ticks) => ticks.map(format || String) }],
        series: [{}, ...series.map(([label, values], i) => ({
          label, stroke: PALETTE[i % PALETTE.length], width: 2, spanGaps: false,
          // Lone points between empty buckets (latency) would not show as lines.
          points: { show: values.includes(null) && values.filter((v) => v !== null).length < 20, size: 5 },
        }))],
      };
      const made = new uPlot(opts, [t, ...series.map(([, values]) => values)], plot);
      Console.charts.push(made);
    });
    return box;
  }

  function tile(label, value) {
    return h("div.card.tile", {}, h("div.label", {}, label), h("div.value", {}, value));
  }

  function table(columns, rows, onclick) {
    const labelled = columns.some(([label]) => label); // a facts table has no header row
    const head = labelled ? h("tr", {}, columns.map(([label, , num]) => h(num ? "th.num" : "th", {}, label))) : null;
    const body = rows.map((row) => {
      const tr = h(onclick ? "tr.clickable" : "tr", {},
        columns.map(([, cell, num]) => {
          const value = cell(row);
          return h(num ? "td.num" : "td", {}, value);
        }));
      if (onclick) tr.addEventListener("click", () => onclick(row));
      return tr;
    });
    return h("div.table-wrap", {}, h("table", {}, h("thead", {}, head), h("tbody", {}, body)));
  }

  function state(value) {
    return h("span.state." + value, {}, value.replace("_", " "));
  }

  Console.ui = { chart, table, state }; // shared with pool.js

  // --- Overview -------------------------------------------------------------------------------

  const GROUP_COLUMNS = [
    ["Name", (r) => r.name], ["Requests", (r) => fmt.int(r.requests), 1],
    ["Errors", (r) => fmt.pct(r.error_rate), 1], ["p50", (r) => fmt.ms(r.p50_ms), 1],
    ["p95", (r) => fmt.ms(r.p95_ms), 1], ["TTFT", (r) => fmt.ms(r.ttft_ms), 1],
    ["Tokens in", (r) => fmt.int(r.tokens_in), 1], ["Tokens out", (r) => fmt.int(r.tokens_out), 1],
    ["Cost", (r) => fmt.usd(r.cost_usd), 1],
  ];

  pages.overview = async function overview(main) {
    const range = sessionStorage.getItem("apex-range") || "1h";
    const picker = h("div.toolbar", {}, ["15m", "1h", "24h", "7d"].map((name) =>
      h(name === range ? "button" : "button.ghost", {
        type: "button", "data-range": name,
        onclick: () => { sessionStorage.setItem("apex-range", name); pages.overview(main); },
      }, name)));
    const data = await api("GET", "/admin/overview?range=" + range);
    Console.charts = [];
    const s = data.series, t = data.totals;
    main.replaceChildren(
      h("h1", {}, "Overview"), picker,
      h("div.tiles", { id: "totals" },
        tile("Requests", fmt.int(t.requests)), tile("Error rate", fmt.pct(t.error_rate)),
        tile("p50 latency", fmt.ms(t.p50_ms)), tile("p95 latency", fmt.ms(t.p95_ms)),
        tile("Time to first token", fmt.ms(t.ttft_ms)), tile("Tokens in", fmt.int(t.tokens_in)),
        tile("Tokens out", fmt.int(t.tokens_out)), tile("Cost", fmt.usd(t.cost_usd))),
      h("div.charts", {},
        chart("Requests", s.t, [["requests", s.requests], ["errors", s.errors]]),
        chart("Requests by model", s.t, Object.entries(s.requests_by_model)),
        chart("Latency", s.t, [["p50", s.p50_ms], ["p95", s.p95_ms], ["TTFT", s.ttft_ms]], fmt.ms),
        chart("Error rate", s.t, [["error rate", s.error_rate]], fmt.pct),
        chart("Tokens", s.t, [["in", s.tokens_in], ["out", s.tokens_out]]),
        chart("Cost", s.t, [["USD", s.cost_usd]], fmt.usd)),
      h("h2", {}, "By model"), table(GROUP_COLUMNS, data.by_model),
      h("h2", {}, "By provider"), table(GROUP_COLUMNS, data.by_provider),
    );
  };
  Console.charts = [];

  // --- Requests -------------------------------------------------------------------------------

  const REQUEST_COLUMNS = [
    ["Time", (r) => fmt.time(r.ts)],
    ["Status", (r) => h(r.status >= 400 || r.status === 0 ? "span.status-err" : "span", {}, r.status), 1],
    ["Model", (r) => r.mapped_model || r.requested_model || "–"], ["Provider", (r) => r.provider || "–"],
    ["Key", (r) => r.token_name || "–"], ["Attempts", (r) => r.attempts, 1],
    ["TTFT", (r) => fmt.ms(r.ttft_ms), 1], ["Total", (r) => fmt.ms(r.duration_ms), 1],
    ["In", (r) => fmt.int(r.prompt_tokens), 1], ["Out", (r) => fmt.int(r.completion_tokens), 1],
    ["Request id", (r) => r.request_id],
  ];
  const FILTERS = ["model", "provider", "status", "key"];

  pages.requests = async function requests(main, [id]) {
    if (id) return requestStory(main, id);
    const saved = JSON.parse(sessionStorage.getItem("apex-filters") || "{}");
    const inputs = FILTERS.map((name) => h("input", {
      name, placeholder: name === "status" ? "status (429, 5xx, error)" : name, value: saved[name] || "",
    }));
    const since = h("select", { name: "since" }, ["15m", "1h", "24h", "7d"].map((v) =>
      h("option", { value: v, selected: (saved.since || "24h") === v }, "last " + v)));
    const holder = h("div", { id: "requests" });
    const form = h("form.toolbar", {}, inputs, since, h("button", { type: "submit" }, "Filter"));
    form.addEventListener("submit", (event) => { event.preventDefault(); load(); });
    main.replaceChildren(h("h1", {}, "Requests"), form, holder);
    async function load() {
      const query = new URLSearchParams({ since: since.value, limit: "200" });
      const kept = { since: since.value };
      for (const input of inputs) if (input.value) query.set(input.name, (kept[input.name] = input.value));
      sessionStorage.setItem("apex-filters", JSON.stringify(kept));
      const data = await api("GET", "/admin/requests?" + query);
      holder.replaceChildren(data.requests.length ? table(REQUEST_COLUMNS, data.requests,
        (r) => { location.hash = "#/requests/" + encodeURIComponent(r.request_id); })
        : h("p.muted", {}, "No requests match."));
    }
    await load();
  };

  const ATTEMPT_COLUMNS = [
    ["#", (a) => a.n, 1], ["Provider", (a) => a.provider], ["Key", (a) => a.key_name],
    ["Upstream model", (a) => a.upstream_model],
    ["Status", (a) => h(a.status >= 400 || !a.status ? "span.status-err" : "span", {}, a.status ?? "no answer"), 1],
    ["Reason", (a) => a.reason || ""], ["Latency", (a) => fmt.ms(a.latency_ms), 1],
  ];

  async function requestStory(main, id) {
    const r = await api("GET", "/admin/requests/" + encodeURIComponent(id));
    const facts = [
      ["Time", fmt.time(r.ts)], ["Endpoint", r.endpoint], ["Status", r.status],
      ["Model", `${r.requested_model} → ${r.mapped_model || "–"} → ${r.upstream_model || "–"}`],
      ["Provider", r.provider || "–"], ["Key (client)", r.token_name || "–"],
      ["Stream", r.stream ? "yes" : "no"], ["TTFB", fmt.ms(r.ttfb_ms)], ["TTFT", fmt.ms(r.ttft_ms)],
      ["Total", fmt.ms(r.duration_ms)],
      ["Tokens", `${fmt.int(r.prompt_tokens)} in / ${fmt.int(r.completion_tokens)} out`],
      ["Cost", fmt.usd(r.cost_usd)],
      ["Error", r.error_type ? `${r.error_type}: ${r.error_message || ""}` : "–"],
    ];
    const attempts = (r.attempts || []).map((a, i) => ({ ...a, n: i + 1 }));
    main.replaceChildren(
      h("p", {}, h("a", { href: "#/requests" }, "← Requests")),
      h("h1", {}, "Request " + r.request_id),
      table([["", (f) => f[0]], ["", (f) => String(f[1])]], facts),
      h("h2", {}, `Attempts (${attempts.length})`),
      h("div", { id: "attempts" }, table(ATTEMPT_COLUMNS, attempts)),
      h("h2", {}, "Raw capture"),
      r.raw ? h("div", {}, ["request_headers", "request_body", "response_headers", "response_body"].map((k) =>
        [h("h3", {}, k.replace("_", " ")), h("pre", {}, typeof r.raw[k] === "string" ? r.raw[k] : JSON.stringify(r.raw[k], null, 2))]))
        : h("p.muted", {}, "Not captured (records.raw is off)."),
    );
  }

  // --- Virtual keys (issue 16's /admin/keys) ----------------------------------------------------

  pages.keys = async function keys(main) {
    main.replaceChildren(h("h1", {}, "Virtual keys"));
    let data;
    try {
      data = await api("GET", "/admin/keys");
    } catch (err) {
      if (err.status !== 404) throw err;
      main.append(h("p.card", { id: "keys-unavailable" },
        "Virtual keys are not available in this gateway (GET /admin/keys answers 404)."));
      return;
    }
    const list = Array.isArray(data) ? data : data.keys || data.data || [];
    const name = h("input", { name: "name", placeholder: "name", required: true });
    const models = h("input", { name: "models", placeholder: "models (a,b; empty: all)" });
    const rpm = h("input", { name: "rpm", placeholder: "rpm", inputmode: "numeric", size: 6 });
    const budget = h("input", { name: "budget", placeholder: "budget USD", inputmode: "decimal", size: 10 });
    const shown = h("div", { id: "new-key" });
    const form = h("form.toolbar", {}, name, models, rpm, budget, h("button", { type: "submit" }, "Create"));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const body = { name: name.value };
      if (models.value) body.models = models.value.split(",").map((m) => m.trim()).filter(Boolean);
      if (rpm.value) body.rpm = Number(rpm.value);
      if (budget.value) body.budget = Number(budget.value);
      try {
        const made = await api("POST", "/admin/keys", body);
        await pages.keys(main);
        main.querySelector("#new-key").replaceChildren(h("div.card.once", {},
          h("p", {}, "The new key — copy it now, it is shown only once:"), h("pre", { id: "new-key-value" }, made.key)));
      } catch (err) { shown.replaceChildren(h("p.error", {}, err.message)); }
    });
    const columns = [
      ["Name", (k) => k.name || "–"], ["Id", (k) => k.id], ["Prefix", (k) => k.prefix || "–"],
      ["State", (k) => k.state || (k.revoked_at ? "revoked" : "active")],
      ["Models", (k) => (k.models && k.models.length ? k.models.join(", ") : "all")],
      ["RPM", (k) => fmt.int(k.rpm), 1], ["Budget", (k) => (k.budget ? fmt.usd(k.budget) + " / " + (k.budget_period || "") : "–"), 1],
      ["Spent", (k) => fmt.usd(k.spend_total), 1],
      ["", (k) => h("button.ghost", { type: "button", onclick: () => editKey(main, k) }, "Edit")],
      ["", (k) => (k.revoked_at || k.state === "revoked") ? "" : h("button.danger", { type: "button", "data-revoke": k.id, onclick: async () => {
        if (!confirm(`Revoke ${k.name || k.id}?`)) return;
        await api("DELETE", "/admin/keys/" + encodeURIComponent(k.id));
        await pages.keys(main);
      } }, "Revoke")],
    ];
    main.append(form, shown, h("div", { id: "keys" }, table(columns, list)));
  };

  async function editKey(main, key) {
    const id = encodeURIComponent(key.id);
    const spend = await api("GET", `/admin/keys/${id}/spend?since=30d`).catch((e) => ({ error: e.message }));
    const text = h("textarea", { rows: 10, cols: 60 }, JSON.stringify(key, null, 2));
    const out = h("p.error");
    const save = h("button", { type: "button", onclick: async () => {
      try {
        // Only what was changed goes in the PATCH (ids and timestamps are not editable).
        const edited = JSON.parse(text.value), changes = {};
        for (const [name, value] of Object.entries(edited)) {
          if (JSON.stringify(value) !== JSON.stringify(key[name])) changes[name] = value;
        }
        await api("PATCH", "/admin/keys/" + id, changes);
        await pages.keys(main);
      } catch (err) { out.textContent = err.message; }
    } }, "Save");
    main.append(h("div.card", { id: "key-editor" }, h("h2", {}, "Edit " + (key.name || key.id)),
      h("div", {}, text), save, out, spendView(spend)));
  }

  // Spend per UTC day over the last 30 days (GET /admin/keys/{id}/spend), zeros filled in.
  function spendView(spend) {
    if (spend.error || !Array.isArray(spend.days)) return h("p.error", {}, spend.error || "No spend data.");
    const byDay = Object.fromEntries(spend.days.map((d) => [d.day, d]));
    const today = Math.floor(Date.now() / 86400000);
    const t = [], usd = [], requests = [];
    for (let day = today - 29; day <= today; day++) {
      const name = new Date(day * 86400000).toISOString().slice(0, 10);
      t.push(day * 86400);
      usd.push(byDay[name] ? byDay[name].usd : 0);
      requests.push(byDay[name] ? byDay[name].requests : 0);
    }
    return h("div", {},
      h("h2", {}, `Spend, last 30 days: ${fmt.usd(spend.usd)} over ${fmt.int(spend.requests)} requests`),
      h("div.charts", {}, chart("USD per day", t, [["USD", usd]], fmt.usd),
        chart("Requests per day", t, [["requests", requests]])));
  }

  // --- Config ---------------------------------------------------------------------------------

  pages.config = async function config(main) {
    const data = await api("GET", "/admin/config");
    const out = h("div", { id: "reload-result" });
    const reload = h("button", { type: "button", onclick: async () => {
      out.replaceChildren();
      try {
        const answer = await api("POST", "/admin/reload", {});
        await pages.config(main);
        main.querySelector("#reload-result").append(h("p", {}, "Reloaded."),
          h("pre", {}, JSON.stringify(answer.changes ?? answer, null, 2)));
      } catch (err) {
        if (err.status === 404 && err.code !== "reload_unavailable") {
          out.append(h("p.error", {}, "Reload is not available in this gateway (POST /admin/reload answers 404)."));
          return;
        }
        // A refused file: the running config stays; say every problem `check` found.
        const problems = (err.data && err.data.problems) || [];
        out.append(h("p.error", {}, "Not reloaded: " + err.message),
          problems.length ? h("ul.error", { id: "reload-problems" }, problems.map((p) =>
            h("li", {}, typeof p === "string" ? p : JSON.stringify(p)))) : null);
      }
    } }, "Reload config");
    main.replaceChildren(h("h1", {}, "Config"),
      h("div.toolbar", {}, h("span.muted", {}, "Source: " + (data.source || "built-in")), reload), out,
      h("pre", { id: "config" }, JSON.stringify(data.config, null, 2)));
  };
})();
