// Charts of a report page: the server renders the data of the charts the report's workbook
// has (read_api.excel.CHARTS) into a <script type="application/json"> block; Apache ECharts
// (vendored, see vendor/README) draws them. No inline script.
(function () {
  "use strict";
  var holder = document.getElementById("report-charts");
  var source = document.getElementById("report-chart-data");
  if (!holder || !source || typeof echarts === "undefined") { return; }
  var charts = JSON.parse(source.textContent || "[]");
  var drawn = [];
  charts.forEach(function (spec) {
    var box = document.createElement("div");
    box.className = "chart";
    box.setAttribute("role", "img");
    box.setAttribute("aria-label", spec.title);
    holder.appendChild(box);
    var chart = echarts.init(box, null, { renderer: "svg" });
    var option;
    if (spec.kind === "graph") {
      // the process map: stages left to right, arrows as wide as their count, moves back
      // curved below the line
      box.className = "chart process-graph";
      if (spec.note) { box.setAttribute("title", spec.note); }
      var last = Math.max(1, spec.nodes.length - 1);
      option = {
        animation: false,
        title: { text: spec.title, subtext: spec.note || "", textStyle: { fontSize: 14 } },
        tooltip: {},
        // a hidden grid places each stage at its position in the funnel, left to right
        grid: { left: 90, right: 90, top: 100, bottom: 40 },
        xAxis: { type: "value", min: -0.2, max: last + 0.2, show: false },
        yAxis: { type: "value", min: -1, max: 1, show: false },
        series: [{
          type: "graph", coordinateSystem: "cartesian2d",
          edgeSymbol: ["none", "arrow"], edgeSymbolSize: 10,
          label: { show: true, position: "bottom", fontSize: 11, lineHeight: 15 },
          edgeLabel: { show: true, fontSize: 11 },
          data: spec.nodes.map(function (n) {
            return { name: n.name, value: [n.position, n.y], symbolSize: n.symbolSize,
                     label: { formatter: n.caption } };
          }),
          links: spec.links.map(function (l) {
            return {
              source: l.source, target: l.target,
              lineStyle: { width: l.width, curveness: l.rework ? 0.5 : 0.25,
                           color: l.rework ? "#c0392b" : "#5470c6", opacity: 0.8 },
              label: { formatter: l.caption }
            };
          })
        }]
      };
    } else if (spec.kind === "pie") {
      option = {
        title: { text: spec.title, textStyle: { fontSize: 14 } },
        tooltip: { trigger: "item" },
        series: [{
          type: "pie", radius: "60%", top: 24,
          data: spec.categories.map(function (name, i) { return { name: name, value: spec.series[0].data[i] }; })
        }]
      };
    } else {
      var horizontal = spec.kind === "bar";
      var categories = { type: "category", data: spec.categories, axisLabel: { interval: 0, rotate: horizontal ? 0 : 20 } };
      var values = { type: "value" };
      option = {
        animation: false,
        title: { text: spec.title, textStyle: { fontSize: 14 } },
        tooltip: { trigger: "axis" },
        legend: { top: 0, right: 0 },
        grid: { left: horizontal ? 140 : 48, right: 16, top: 40, bottom: 60 },
        xAxis: horizontal ? values : categories,
        yAxis: horizontal ? categories : values,
        series: spec.series.map(function (s) { return { name: s.name, type: "bar", data: s.data }; })
      };
    }
    chart.setOption(option);
    drawn.push(chart);
  });
  window.addEventListener("resize", function () { drawn.forEach(function (c) { c.resize(); }); });
  holder.dataset.ready = "true";
})();
