// Charts of the workspace: data comes from a <script type="application/json"> block the
// server renders; Apache ECharts (vendored, see vendor/README) draws it. No inline script.
(function () {
  "use strict";
  var holder = document.getElementById("pipeline-chart");
  var source = document.getElementById("pipeline-data");
  if (!holder || !source || typeof echarts === "undefined") { return; }
  var funnels = JSON.parse(source.textContent || "[]");
  if (!funnels.length) { holder.hidden = true; return; }
  var stages = [];
  funnels.forEach(function (f) { f.stages.forEach(function (s) { if (stages.indexOf(s) < 0) { stages.push(s); } }); });
  var series = funnels.map(function (f) {
    return {
      name: f.name, type: "bar", stack: "leads",
      data: stages.map(function (s) { var i = f.stages.indexOf(s); return i < 0 ? 0 : f.counts[i]; })
    };
  });
  var chart = echarts.init(holder, null, { renderer: "svg" });
  chart.setOption({
    animation: false,
    tooltip: { trigger: "axis" },
    legend: { top: 0 },
    grid: { left: 40, right: 16, top: 36, bottom: 60 },
    xAxis: { type: "category", data: stages, axisLabel: { interval: 0, rotate: 20 } },
    yAxis: { type: "value", minInterval: 1 },
    series: series
  });
  window.addEventListener("resize", function () { chart.resize(); });
  holder.dataset.ready = "true";
})();
