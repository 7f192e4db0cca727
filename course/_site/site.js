// The course website's only script: draws the plotly figures embedded in the page (their
// JSON sits in <script type="application/json"> right after each placeholder) and runs the
// section search on sections.html. Nothing is fetched: it works from file:// too.
(function () {
  "use strict";

  function drawFigures() {
    if (typeof Plotly === "undefined") return;
    document.querySelectorAll("script.course-plotly-data").forEach(function (script) {
      var div = script.previousElementSibling;
      if (!div || !div.classList.contains("course-plotly")) return;
      var fig = JSON.parse(script.textContent);
      var config = Object.assign({ responsive: true, displaylogo: false }, fig.config || {});
      Plotly.newPlot(div, fig.data || [], fig.layout || {}, config);
    });
  }

  function words(text) {
    return text.toLowerCase().split(/\s+/).filter(function (w) { return w.length > 0; });
  }

  function setupSearch() {
    var data = document.getElementById("search-data");
    var input = document.getElementById("search-input");
    var results = document.getElementById("search-results");
    if (!data || !input || !results) return;
    var entries = JSON.parse(data.textContent);
    function run() {
      var query = words(input.value);
      results.innerHTML = "";
      if (query.length === 0) { results.hidden = true; return; }
      results.hidden = false;
      var hits = entries.filter(function (e) {
        var hay = (e.heading + " " + e.page_title + " " + e.text).toLowerCase();
        return query.every(function (w) { return hay.indexOf(w) >= 0; });
      });
      var count = document.createElement("p");
      count.textContent = hits.length + " section" + (hits.length === 1 ? "" : "s") +
        " match “" + input.value + "”.";
      results.appendChild(count);
      var list = document.createElement("ol");
      hits.slice(0, 100).forEach(function (e) {
        var li = document.createElement("li");
        var a = document.createElement("a");
        a.href = e.href;
        a.textContent = e.page_title + " › " + e.heading;
        var snippet = document.createElement("div");
        snippet.className = "snippet";
        snippet.textContent = e.text.slice(0, 220) + (e.text.length > 220 ? "…" : "");
        li.appendChild(a);
        li.appendChild(snippet);
        list.appendChild(li);
      });
      results.appendChild(list);
    }
    var params = new URLSearchParams(window.location.search);
    if (params.get("q")) input.value = params.get("q");
    input.addEventListener("input", run);
    run();
  }

  document.addEventListener("DOMContentLoaded", function () {
    drawFigures();
    setupSearch();
  });
})();
