// The demo page's live dashboard: reads GET /metrics (Prometheus text) every second and shows
// open streams, events/s, reconnects by outcome and store incidents, with a chart of the
// last five minutes. Every number shown is one series of /metrics (or a rate of one), and
// each tile keeps the raw value in data-value, so the end-to-end check can compare them.
(() => {
  const INTERVAL_MS = 1000;
  const HISTORY = 300; // points: five minutes at one per second
  const root = document.getElementById("dashboard");
  if (!root) return;
  root.innerHTML = `<style>
  #dashboard { margin-top: 2em; }
  #dashboard .tiles { display: grid; grid-template-columns: repeat(5, 1fr); gap: .5em; margin: .5em 0; }
  #dashboard .tiles div { border: 1px solid #ddd; border-radius: 4px; padding: .4em; font-size: 13px; color: #555; }
  #dashboard .tiles span { display: block; font-size: 22px; color: #000; font-variant-numeric: tabular-nums; }
  #dashboard canvas { width: 100%; height: 160px; }
</style>
<h2>Server metrics</h2>
<p>From <a href="/metrics"><code>/metrics</code></a> (Prometheus text), every second.
   <span id="dashboard-status"></span></p>
<div class="tiles">
  <div><span data-metric="active">–</span>open streams</div>
  <div><span data-metric="events-rate">–</span>events/s</div>
  <div><span data-metric="events">–</span>events written</div>
  <div><span data-metric="streams">–</span>streams opened</div>
  <div><span data-metric="subscribers">–</span>hub subscribers</div>
  <div><span data-metric="resumed">–</span>reconnects resumed</div>
  <div><span data-metric="gaps">–</span>reconnects with a gap</div>
  <div><span data-metric="unknown">–</span>unknown Last-Event-ID</div>
  <div><span data-metric="log-error">–</span>replays the store failed</div>
  <div><span data-metric="incidents">–</span>store incidents</div>
</div>
<canvas id="dashboard-chart" width="800" height="160"></canvas>`;
  const tile = (name) => root.querySelector(`[data-metric="${name}"]`);
  const history = [];
  let previous = null;
  let scrapes = 0;

  // Parses the exposition format into { "name{labels}": value }.
  function parse(text) {
    const series = {};
    for (const line of text.split("\n")) {
      if (!line || line.startsWith("#")) continue;
      const space = line.lastIndexOf(" ");
      if (space < 0) continue;
      series[line.slice(0, space)] = Number(line.slice(space + 1));
    }
    return series;
  }

  function show(name, value, text) {
    const el = tile(name);
    if (!el) return;
    el.dataset.value = String(value);
    el.textContent = text ?? String(value);
  }

  function draw() {
    const canvas = document.getElementById("dashboard-chart");
    const ctx = canvas.getContext("2d");
    const { width, height } = canvas;
    ctx.clearRect(0, 0, width, height);
    ctx.strokeStyle = "#ddd";
    ctx.strokeRect(0.5, 0.5, width - 1, height - 1);
    const lines = [
      { key: "active", color: "#06c" },
      { key: "rate", color: "#080" },
    ];
    for (const { key, color } of lines) {
      const max = Math.max(1, ...history.map((p) => p[key]));
      ctx.strokeStyle = color;
      ctx.lineWidth = 2;
      ctx.beginPath();
      history.forEach((point, i) => {
        const x = width - (history.length - 1 - i) * (width / (HISTORY - 1)) - 1;
        const y = height - 4 - (point[key] / max) * (height - 8);
        if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
      });
      ctx.stroke();
      ctx.fillStyle = color;
      ctx.fillText(`${key === "active" ? "open streams" : "events/s"} (max ${max.toFixed(key === "rate" ? 1 : 0)})`, 8, key === "active" ? 14 : 28);
    }
  }

  async function scrape() {
    try {
      const response = await fetch("/metrics", { cache: "no-store" });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const m = parse(await response.text());
      const now = performance.now();
      const events = m["sse_server_events_total"] ?? 0;
      const rate = previous && now > previous.at ? Math.max(0, (events - previous.events) * 1000 / (now - previous.at)) : 0;
      previous = { at: now, events };
      const replays = (outcome) => m[`sse_server_replays_total{outcome="${outcome}"}`] ?? 0;
      const incidents = Object.entries(m)
        .filter(([name]) => name.startsWith("sse_log_errors_total{"))
        .reduce((sum, [, value]) => sum + value, 0);
      show("active", m["sse_server_active_streams"] ?? 0);
      show("events-rate", rate, rate.toFixed(1));
      show("events", events);
      show("streams", m["sse_server_streams_total"] ?? 0);
      show("resumed", replays("resumed"));
      show("gaps", replays("gap"));
      show("unknown", replays("unknown"));
      show("log-error", replays("log_error"));
      show("subscribers", m["sse_hub_subscribers"] ?? 0);
      show("incidents", incidents);
      history.push({ active: m["sse_server_active_streams"] ?? 0, rate });
      while (history.length > HISTORY) history.shift();
      draw();
      scrapes += 1;
      root.dataset.scrapes = String(scrapes);
      document.getElementById("dashboard-status").textContent = `updated ${new Date().toLocaleTimeString()}`;
    } catch (error) {
      document.getElementById("dashboard-status").textContent = `cannot read /metrics: ${error.message}`;
    }
  }

  scrape();
  setInterval(scrape, INTERVAL_MS);
})();
