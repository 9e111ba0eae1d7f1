// The Spindle dashboard: jobs, a machine's sensors and features with its
// alerts, the latest alerts, and SQL over the history. Every data call goes
// to the server's API with the token the user typed (kept in this tab's
// sessionStorage only); the page itself holds no data.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const charts = window.SpindleCharts;
  const state = {
    token: sessionStorage.getItem("spindle-token") || "",
    tables: [],
    previous: {},
    chosen: {},
    tick: 0,
    busy: {},
  };

  // ---------------------------------------------------------------- the API

  async function api(method, path, body) {
    const headers = { Accept: "application/json" };
    if (state.token) headers.Authorization = "Bearer " + state.token;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (response.status === 401) {
      askToken();
      throw new Error("the server needs the API token");
    }
    const text = await response.text();
    let data = text;
    try { data = text ? JSON.parse(text) : null; } catch (_) { /* not JSON */ }
    if (!response.ok) throw new Error((data && data.error) || `${response.status} ${response.statusText}`);
    return data;
  }

  const query = (sql, limit) => api("POST", "/api/query", { sql, limit: limit || 5000 });
  const ident = (name) => '"' + String(name).replace(/"/g, '""') + '"';
  const literal = (value) => "'" + String(value).replace(/'/g, "''") + "'";
  const isTimeType = (type) => /^(Timestamp|Date)/.test(type);
  const isNumberType = (type) => /^(U?Int|Float|Decimal)/.test(type);

  function toMs(value) {
    if (typeof value === "number") return value;
    if (typeof value !== "string") return NaN;
    const zoned = /([zZ]|[+-]\d\d:?\d\d)$/.test(value);
    return Date.parse(zoned ? value : value + "Z");
  }

  function setStatus(message, isError) {
    const status = $("status");
    status.textContent = message;
    status.className = isError ? "error" : "muted";
  }

  function askToken() {
    $("token-form").classList.remove("hidden");
    $("token-forget").classList.add("hidden");
    setStatus("this server needs its API token", true);
  }

  function cell(row, content, className) {
    const td = document.createElement("td");
    td.textContent = content === undefined || content === null ? "" : String(content);
    if (className) td.className = className;
    row.appendChild(td);
    return td;
  }

  const number = (v) => (typeof v === "number" ? (Math.round(v * 100) / 100).toLocaleString("en") : "");

  // ---------------------------------------------------------------- jobs

  function parseMetrics(text) {
    const byJob = {};
    for (const line of text.split("\n")) {
      const m = /^(spindle_\w+)\{([^}]*)\}\s+(\S+)/.exec(line);
      if (!m) continue;
      const job = /job="((?:[^"\\]|\\.)*)"/.exec(m[2]);
      if (!job) continue;
      const entry = byJob[job[1]] || (byJob[job[1]] = { watermark: null, consumer: null });
      const value = Number(m[3]);
      if (m[1] === "spindle_watermark_lag_seconds") entry.watermark = Math.max(entry.watermark || 0, value);
      else if (/consumer_lag/.test(m[1])) entry.consumer = (entry.consumer || 0) + value;
    }
    return byJob;
  }

  async function refreshJobs() {
    const jobs = await api("GET", "/api/jobs");
    let lags = {};
    try {
      const response = await fetch("/metrics");
      if (response.ok) lags = parseMetrics(await response.text());
    } catch (_) { /* metrics are optional here */ }
    const now = Date.now();
    const body = $("jobs").querySelector("tbody");
    body.replaceChildren();
    for (const job of jobs) {
      const c = job.counters || {};
      const before = state.previous[job.id];
      const seconds = before ? (now - before.at) / 1000 : 0;
      const rate = (key) => (before && seconds > 0 ? Math.max(0, (c[key] - before[key]) / seconds) : null);
      const row = document.createElement("tr");
      row.dataset.job = job.name;
      row.dataset.state = job.state;
      cell(row, job.name);
      cell(row, "").appendChild(Object.assign(document.createElement("span"), {
        className: "state state-" + job.state, textContent: job.state,
      }));
      cell(row, number(rate("records_in")));
      cell(row, number(rate("rows_out")));
      cell(row, number(c.records_in));
      cell(row, number(c.rows_out));
      cell(row, number(c.bad));
      cell(row, number(c.late));
      const lag = lags[job.name] || {};
      cell(row, lag.watermark === null || lag.watermark === undefined ? "" : number(lag.watermark) + " s");
      cell(row, lag.consumer === null || lag.consumer === undefined ? "" : number(lag.consumer));
      cell(row, job.last_error || "", "wrap error");
      body.appendChild(row);
      state.previous[job.id] = { at: now, records_in: c.records_in, rows_out: c.rows_out };
    }
    $("jobs-empty").classList.toggle("hidden", jobs.length > 0);
  }

  // ---------------------------------------------------------------- tables

  function timeColumn(table) {
    const names = table.columns.map((c) => c.name);
    if (names.includes("window_start")) return "window_start";
    if (names.includes("ts")) return "ts";
    const first = table.columns.find((c) => isTimeType(c.type));
    return first ? first.name : null;
  }

  async function refreshTables() {
    state.tables = await api("GET", "/api/tables");
    $("table-list").textContent = state.tables.map((t) => t.name).join(", ") || "none yet";
    const select = $("machine-table");
    const usable = state.tables.filter((t) => timeColumn(t) && t.columns.some((c) => c.name === "machine_id"));
    const current = select.value;
    select.replaceChildren(...usable.map((t) => new Option(t.name, t.name)));
    const preferred = usable.find((t) => t.name === current) || usable.find((t) => t.name === "features") || usable[0];
    if (preferred) select.value = preferred.name;
    if (!$("sql").value && state.tables.length) $("sql").value = defaultSql();
  }

  function defaultSql() {
    const features = state.tables.find((t) => t.name === "features");
    if (features && features.columns.some((c) => c.name === "vibration_max")) {
      return "SELECT machine_id, max(vibration_max) AS vibration_peak\nFROM features\nGROUP BY machine_id\nORDER BY vibration_peak DESC\nLIMIT 10";
    }
    return `SELECT * FROM ${ident(state.tables[0].name)} LIMIT 20`;
  }

  // ---------------------------------------------------------------- machine charts

  function chartColumns(table) {
    const time = timeColumn(table);
    const numeric = table.columns.filter((c) => isNumberType(c.type) && c.name !== time && c.name !== "seq");
    if (!state.chosen[table.name]) {
      const avg = numeric.filter((c) => c.name.endsWith("_avg")).slice(0, 3);
      const spread = numeric.filter((c) => c.name.endsWith("_stddev")).slice(0, 1);
      const picked = avg.length ? avg.concat(spread) : numeric.slice(0, 4);
      state.chosen[table.name] = new Set(picked.map((c) => c.name));
    }
    const box = $("columns");
    if (box.dataset.table !== table.name) {
      box.dataset.table = table.name;
      box.replaceChildren(...numeric.map((c) => {
        const label = document.createElement("label");
        const input = Object.assign(document.createElement("input"), {
          type: "checkbox", checked: state.chosen[table.name].has(c.name), value: c.name,
        });
        input.addEventListener("change", () => {
          if (input.checked) state.chosen[table.name].add(c.name); else state.chosen[table.name].delete(c.name);
          refreshCharts();
        });
        label.append(input, " " + c.name);
        return label;
      }));
    }
    return numeric.filter((c) => state.chosen[table.name].has(c.name)).map((c) => c.name);
  }

  async function refreshMachines() {
    const table = state.tables.find((t) => t.name === $("machine-table").value);
    if (!table) return;
    const hasDate = table.columns.some((c) => c.name === "date");
    const where = hasDate ? ` WHERE date = (SELECT max(date) FROM ${ident(table.name)})` : "";
    const result = await query(`SELECT DISTINCT machine_id FROM ${ident(table.name)}${where} ORDER BY machine_id LIMIT 1000`);
    const select = $("machine");
    const current = select.value;
    const machines = result.rows.map((r) => r.machine_id);
    select.replaceChildren(...machines.map((m) => new Option(m, m)));
    if (machines.includes(current)) select.value = current;
  }

  async function refreshCharts() {
    const table = state.tables.find((t) => t.name === $("machine-table").value);
    const machine = $("machine").value;
    const box = $("charts");
    if (!table || !machine) {
      box.replaceChildren();
      $("machine-note").textContent = "No machine data in the history yet.";
      return;
    }
    const time = timeColumn(table);
    const columns = chartColumns(table);
    const minutes = Number($("span").value);
    const source = ident(table.name);
    const sql = `SELECT ${ident(time)} AS t${columns.map((c) => ", " + ident(c)).join("")} FROM ${source}
      WHERE machine_id = ${literal(machine)}
        AND ${ident(time)} >= (SELECT max(${ident(time)}) FROM ${source} WHERE machine_id = ${literal(machine)}) - INTERVAL '${minutes} minutes'
      ORDER BY ${ident(time)}`;
    const result = await query(sql, 5000);
    const rows = result.rows.map((r) => Object.assign({}, r, { t: toMs(r.t) }));
    let markers = [];
    if (rows.length) {
      const since = new Date(rows[0].t).toISOString();
      const alerts = await api("GET", `/api/anomalies?since=${encodeURIComponent(since)}&machine=${encodeURIComponent(machine)}&limit=1000`);
      markers = alerts.alerts.map((a) => ({
        x: toMs(a.ts), label: `${a.ts} ${a.model}: ${a.reason || ""} (score ${number(a.score)})`,
      }));
    }
    const fresh = document.createDocumentFragment();
    for (const c of columns) {
      charts.line(fresh, `${machine} · ${c}`, rows.map((r) => ({ x: r.t, y: r[c] })), markers, { time: true });
    }
    box.replaceChildren(fresh);
    $("machine-note").textContent = `${rows.length} rows from ${table.name}${result.truncated ? " (cut)" : ""}, ${markers.length} alerts.`;
  }

  // ---------------------------------------------------------------- alerts

  async function refreshAlerts() {
    const since = $("alerts-since").value;
    const [latest, counts] = await Promise.all([
      api("GET", `/api/anomalies?since=${since}&limit=50`),
      api("GET", `/api/anomalies/count?range=${since}`),
    ]);
    const body = $("alerts").querySelector("tbody");
    body.replaceChildren(...latest.alerts.map((a) => {
      const row = document.createElement("tr");
      cell(row, a.ts);
      cell(row, a.machine_id);
      cell(row, a.model);
      cell(row, number(a.score));
      cell(row, number(a.threshold));
      cell(row, a.reason, "wrap");
      return row;
    }));
    const top = counts.counts.slice(0, 5).map((c) => `${c.machine_id} ${c.model} ×${c.count}`);
    $("alert-counts").textContent = `${counts.total} alerts${top.length ? ": " + top.join(", ") : ""}`;
  }

  // ---------------------------------------------------------------- SQL box

  async function runSql() {
    const status = $("sql-status");
    status.className = "muted";
    status.textContent = "running…";
    const started = performance.now();
    try {
      const result = await query($("sql").value, 500);
      showResult(result);
      const ms = Math.round(performance.now() - started);
      status.textContent = `${result.rows.length} rows${result.truncated ? " (cut at 500)" : ""} in ${ms} ms`;
    } catch (e) {
      status.className = "error";
      status.textContent = e.message;
    }
  }

  function showResult(result) {
    const table = $("result");
    const head = document.createElement("tr");
    for (const c of result.columns) {
      const th = document.createElement("th");
      th.textContent = c.name;
      th.title = c.type;
      head.appendChild(th);
    }
    table.querySelector("thead").replaceChildren(head);
    table.querySelector("tbody").replaceChildren(...result.rows.map((r) => {
      const row = document.createElement("tr");
      for (const c of result.columns) cell(row, r[c.name]);
      return row;
    }));
    const box = $("result-chart");
    box.replaceChildren();
    const [x, ...rest] = result.columns;
    const y = rest.find((c) => isNumberType(c.type));
    if (!x || !y || !result.rows.length) return;
    const title = `${y.name} by ${x.name}`;
    if (isTimeType(x.type) || isNumberType(x.type)) {
      const points = result.rows.map((r) => ({ x: isTimeType(x.type) ? toMs(r[x.name]) : Number(r[x.name]), y: Number(r[y.name]) }));
      points.sort((a, b) => a.x - b.x);
      charts.line(box, title, points, [], { time: isTimeType(x.type) });
    } else {
      charts.bars(box, title, result.rows.map((r) => r[x.name]), result.rows.map((r) => r[y.name]));
    }
  }

  // ---------------------------------------------------------------- the loop

  async function guarded(name, work) {
    if (state.busy[name]) return;
    state.busy[name] = true;
    try { await work(); } finally { state.busy[name] = false; }
  }

  async function refresh() {
    const every = (n) => state.tick % n === 0;
    try {
      await guarded("jobs", refreshJobs);
      if (every(30) || !state.tables.length) {
        await guarded("tables", async () => { await refreshTables(); await refreshMachines(); });
      }
      if (every(3)) await Promise.all([guarded("charts", refreshCharts), guarded("alerts", refreshAlerts)]);
      setStatus("updated " + new Date().toLocaleTimeString(), false);
      if (state.token) $("token-forget").classList.remove("hidden");
    } catch (e) {
      if (!/API token/.test(e.message)) setStatus(e.message, true);
    }
    state.tick += 1;
  }

  function restart() {
    state.tick = 0;
    state.tables = [];
    refresh();
  }

  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    state.token = $("token").value.trim();
    sessionStorage.setItem("spindle-token", state.token);
    $("token-form").classList.add("hidden");
    restart();
  });
  $("token-forget").addEventListener("click", () => {
    state.token = "";
    sessionStorage.removeItem("spindle-token");
    askToken();
  });
  $("machine-table").addEventListener("change", () => guarded("machines", async () => { await refreshMachines(); await refreshCharts(); }).catch((e) => setStatus(e.message, true)));
  for (const id of ["machine", "span"]) $(id).addEventListener("change", () => refreshCharts().catch((e) => setStatus(e.message, true)));
  $("alerts-since").addEventListener("change", () => refreshAlerts().catch((e) => setStatus(e.message, true)));
  $("run").addEventListener("click", runSql);
  $("sql").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) runSql();
  });

  refresh();
  setInterval(() => { if (!document.hidden) refresh(); }, 2000);
})();
