// ticketflow console: draw the Graphviz graphs (layout by @viz-js/viz) and the run report's chart
// (Chart.js) in whatever the page or an htmx swap brought in. Everything else is server-rendered.
(function () {
  "use strict";
  var vizReady = null;

  function drawGraphs(root) {
    var holders = root.querySelectorAll ? root.querySelectorAll(".graph[data-dot]") : [];
    if (!holders.length) { return; }
    vizReady = vizReady || Viz.instance();
    vizReady.then(function (viz) {
      holders.forEach(function (holder) {
        var svg = viz.renderSVGElement(holder.getAttribute("data-dot"));
        holder.replaceChildren(svg);
        holder.setAttribute("data-drawn", "true");
      });
    }).catch(function (err) {
      holders.forEach(function (holder) { holder.textContent = "graph not drawn: " + err; });
    });
  }

  function drawCharts(root) {
    var canvases = root.querySelectorAll ? root.querySelectorAll("canvas[data-chart]") : [];
    canvases.forEach(function (canvas) {
      var counts = JSON.parse(canvas.getAttribute("data-chart"));
      var colours = counts.map(function (c) {
        return c[0] === "read" ? "#90a4ae" : c[0] === "published" ? "#43a047" : "#e53935";
      });
      new Chart(canvas, {
        type: "bar",
        data: {
          labels: counts.map(function (c) { return c[0]; }),
          datasets: [{ label: "rows", data: counts.map(function (c) { return c[1]; }), backgroundColor: colours }]
        },
        options: { indexAxis: "y", animation: false, plugins: { legend: { display: false } } }
      });
    });
  }

  function chosenFiles() {
    var input = document.getElementById("files"), drop = document.getElementById("drop");
    if (!input || !drop) { return; }
    var show = function () {
      var names = Array.prototype.map.call(input.files, function (f) { return f.name; });
      document.getElementById("chosen").textContent = names.length ? names.join(", ") : "";
    };
    input.addEventListener("change", show);
    ["dragover", "dragenter"].forEach(function (t) {
      drop.addEventListener(t, function (e) { e.preventDefault(); drop.classList.add("over"); });
    });
    drop.addEventListener("dragleave", function () { drop.classList.remove("over"); });
    drop.addEventListener("drop", function (e) {
      e.preventDefault(); drop.classList.remove("over");
      input.files = e.dataTransfer.files; show();
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    drawGraphs(document); drawCharts(document); chosenFiles();
    document.body.addEventListener("htmx:afterSwap", function (e) { drawGraphs(document); });
    // htmx sends the page's CSRF token with any request it makes (the polls are GETs; kept for safety).
    document.body.addEventListener("htmx:configRequest", function (e) {
      e.detail.headers["X-CSRFToken"] = document.querySelector("meta[name=csrf-token]").content;
    });
  });
})();
