// The app page's metric charts, drawn with uPlot (from npm): throughput, busy and backpressure per
// vertex, checkpoints (failed ones in red), watermark lag. Data: /apps/<id>/metrics.json, refreshed
// while the page is open.
(function () {
  "use strict";
  const box = document.getElementById("metrics");
  if (!box || typeof uPlot === "undefined") return;
  const app = box.dataset.app;
  const every = Math.max(2, Number(box.dataset.every || 10)) * 1000;
  const palette = ["#2f6fe4", "#e07b00", "#2a9d5b", "#8e44ad", "#c0392b", "#16a2b8", "#7f8c8d", "#b8860b"];
  let windowS = Number(box.dataset.window || 3600);
  let charts = [];

  const si = (v, unit) => {
    if (v == null) return "";
    const a = Math.abs(v);
    const steps = unit === "bytes" ? [[1 << 30, "GiB"], [1 << 20, "MiB"], [1 << 10, "KiB"]] : [[1e9, "G"], [1e6, "M"], [1e3, "k"]];
    for (const [n, s] of steps) if (a >= n) return (v / n).toFixed(1) + " " + s + (unit === "bytes" ? "" : unit ? " " + unit : "");
    return (Number.isInteger(v) ? v : v.toFixed(a < 10 ? 2 : 1)) + (unit === "bytes" ? " B" : unit ? " " + unit : "");
  };
  const ms = (v) => (v == null ? "" : v >= 60000 ? (v / 60000).toFixed(1) + " min" : v >= 1000 ? (v / 1000).toFixed(1) + " s" : Math.round(v) + " ms");
  const pct = (v) => (v == null ? "" : Math.round(v * 100) + " %");

  // Series [[ts_ms, v], ...] of several names joined on one time axis (uPlot's columnar data).
  function join(named) {
    const times = new Set();
    named.forEach(([, pts]) => pts.forEach((p) => times.add(p[0])));
    const xs = Array.from(times).sort((a, b) => a - b);
    const index = new Map(xs.map((t, i) => [t, i]));
    const cols = named.map(([, pts]) => {
      const col = new Array(xs.length).fill(null);
      pts.forEach((p) => (col[index.get(p[0])] = p[1]));
      return col;
    });
    return [xs.map((t) => t / 1000), ...cols];
  }

  function chart(id, title, named, axis, opts) {
    const el = document.getElementById(id);
    el.innerHTML = "";
    const has = named.some(([, pts]) => pts.length);
    el.closest(".chart-box").classList.toggle("empty", !has);
    if (!has) {
      el.innerHTML = '<p class="muted">' + (opts && opts.none ? opts.none : "No samples in this range yet.") + "</p>";
      return null;
    }
    const width = Math.max(280, el.clientWidth || el.parentElement.clientWidth || 600);
    const series = [{}].concat(
      named.map(([name], i) => {
        const style = (opts && opts.styles && opts.styles[i]) || {};
        return Object.assign({ label: name, stroke: palette[i % palette.length], width: 1.5, spanGaps: true, value: (u, v) => axis.fmt(v) }, style);
      })
    );
    const plot = new uPlot(
      {
        title: title,
        width: width,
        height: 200,
        series: series,
        scales: { x: { time: true, range: (u, lo, hi) => [Date.now() / 1000 - windowS, Math.max(hi, Date.now() / 1000)] }, y: axis.range ? { range: axis.range } : {} },
        axes: [{ stroke: "#666" }, { stroke: "#666", label: axis.label, size: 70, values: (u, vals) => vals.map(axis.fmt) }],
        legend: { live: true },
      },
      join(named),
      el
    );
    charts.push(plot);
    return plot;
  }

  function draw(data) {
    charts.forEach((c) => c.destroy());
    charts = [];
    const s = data.series;
    chart("chart-throughput", "Throughput", [["records in", s.records_in_per_s], ["records out", s.records_out_per_s]], { label: "records/s", fmt: (v) => si(v, "") });
    const load = [];
    const styles = [];
    data.vertices.forEach((v, i) => {
      load.push(["busy · " + v.name, v.series.busy_ratio]);
      styles.push({ stroke: palette[i % palette.length] });
      load.push(["backpressured · " + v.name, v.series.backpressured_ratio]);
      styles.push({ stroke: palette[i % palette.length], dash: [6, 4] });
    });
    chart("chart-load", "Busy (solid) and backpressured (dashed) per vertex", load, { label: "share of time", fmt: pct, range: [0, 1] }, { styles: styles });
    const done = data.checkpoints.filter((c) => c.status === "COMPLETED" && c.duration_ms != null).map((c) => [c.at_ms, c.duration_ms]);
    const top = Math.max(1, ...done.map((p) => p[1]));
    const failed = data.checkpoints.filter((c) => c.status === "FAILED").map((c) => [c.at_ms, c.duration_ms != null ? c.duration_ms : top]);
    const point = (color) => ({ stroke: color, width: 0, points: { show: true, size: 7, fill: color, stroke: color } });
    chart(
      "chart-checkpoints",
      "Checkpoint duration (failed in red)",
      [["duration", done], ["failed", failed]],
      { label: "duration", fmt: ms },
      { styles: [{ points: { show: true, size: 5 } }, point("#d0312d")], none: "No checkpoints in this range." }
    );
    chart("chart-size", "Checkpoint size", [["size", s.checkpoint_size_bytes]], { label: "size", fmt: (v) => si(v, "bytes") }, { styles: [{ points: { show: true, size: 5 } }], none: "No checkpoints in this range." });
    chart("chart-watermark", "Watermark lag", [["lag", s.watermark_lag_ms]], { label: "lag", fmt: ms }, { none: "This job has no watermarks." });
    const failedCount = data.checkpoints.filter((c) => c.status === "FAILED").length;
    const note = document.getElementById("metrics-note");
    if (note) note.textContent = data.checkpoints.length + " checkpoints in range, " + failedCount + " failed · a point every " + data.step_s + " s";
  }

  async function load() {
    try {
      const resp = await fetch("/apps/" + app + "/metrics.json?window_s=" + windowS, { credentials: "same-origin" });
      if (!resp.ok) throw new Error("HTTP " + resp.status);
      draw(await resp.json());
      box.dataset.loaded = String(Number(box.dataset.loaded || 0) + 1);
    } catch (err) {
      const note = document.getElementById("metrics-note");
      if (note) note.textContent = "Could not load the metrics: " + err.message;
    }
  }

  box.querySelectorAll("button[data-window]").forEach((b) =>
    b.addEventListener("click", () => {
      windowS = Number(b.dataset.window);
      box.querySelectorAll("button[data-window]").forEach((o) => o.classList.toggle("on", o === b));
      load();
    })
  );
  load();
  setInterval(() => {
    if (!document.hidden) load();
  }, every);
})();
