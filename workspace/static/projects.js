// The portfolio's charts: projects by health (green / amber / red, each labelled) and by
// status, from the JSON block the server renders (the portfolio report's query).
(function () {
  "use strict";
  var source = document.getElementById("portfolio-data");
  var healthHolder = document.getElementById("portfolio-health-chart");
  var statusHolder = document.getElementById("portfolio-status-chart");
  if (!source || !healthHolder || !statusHolder || typeof echarts === "undefined") { return; }
  var data = JSON.parse(source.textContent || "{}");
  var colours = { good: "#12b76a", some_difficulties: "#f79009", big_difficulties: "#d92d20" };
  var health = echarts.init(healthHolder, null, { renderer: "svg" });
  health.setOption({
    animation: false,
    tooltip: { trigger: "item" },
    series: [{
      type: "pie", radius: ["38%", "68%"],
      label: { formatter: "{b}: {c}" },
      data: data.health.filter(function (h) { return h.projects > 0; }).map(function (h) {
        return { name: h.label, value: h.projects, itemStyle: { color: colours[h.level] } };
      })
    }]
  });
  var status = echarts.init(statusHolder, null, { renderer: "svg" });
  status.setOption({
    animation: false,
    tooltip: { trigger: "axis" },
    grid: { left: 40, right: 16, top: 16, bottom: 60 },
    xAxis: { type: "category", data: data.status.map(function (s) { return s.label; }), axisLabel: { interval: 0, rotate: 20 } },
    yAxis: { type: "value", minInterval: 1 },
    series: [{ name: data.projects, type: "bar", data: data.status.map(function (s) { return s.projects; }), itemStyle: { color: "#2456a6" } }]
  });
  window.addEventListener("resize", function () { health.resize(); status.resize(); });
  healthHolder.dataset.ready = "true";
  statusHolder.dataset.ready = "true";
})();
