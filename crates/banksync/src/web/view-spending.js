// Spending: per currency, spending by category per month (stacked bars) and income vs spending (lines), from the
// server's aggregates (`/api/spending/categories`, `/api/spending/cash-flow`) over a chosen range of months. A
// click on a bar segment or on a category's row opens its transactions (effective_category + that month's, or
// the range's, dates). Chart.js (vendored, loaded on first use) draws on canvases; a table beside each chart
// carries the same numbers for screen readers and keyboards.
import { get } from "./api.js";
import { h, section, skeleton, fail } from "./ui.js";
import { categoryName, categoryIcon, money, monthName, monthRange } from "./format.js";

const CHART_SRC = "/assets/chart-4.5.1.umd.min.js";
// Colour-blind-friendly, AA against white for the text legend (the bars themselves carry no text).
const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#7f7f7f",
  "#bcbd22", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#e6550d"];

let chartLoading = null;
function loadChart() {
  if (window.Chart) return Promise.resolve();
  if (!chartLoading) {
    chartLoading = new Promise((resolve, reject) => {
      const s = document.createElement("script");
      s.src = CHART_SRC;
      s.onload = resolve;
      s.onerror = () => reject(new Error("Cannot load the chart library."));
      document.head.appendChild(s);
    });
  }
  return chartLoading;
}

const ym = (d) => `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}`;
function monthsBack(n) {
  const d = new Date();
  d.setDate(1);
  d.setMonth(d.getMonth() - (n - 1));
  return ym(d);
}

export async function mount(root, app) {
  const params = new URLSearchParams(location.search);
  const to = params.get("to") || ym(new Date());
  const from = params.get("from") || monthsBack(12);
  const charts = [];

  const range = h("form.filters.range", { "aria-label": "Range of months" },
    h("div.field", null, h("label", { for: "range-from" }, "From month"), h("input#range-from", { type: "month", name: "from", value: from, required: true })),
    h("div.field", null, h("label", { for: "range-to" }, "To month"), h("input#range-to", { type: "month", name: "to", value: to, required: true })),
    h("div.filter-actions", null, h("button.primary", { type: "submit" }, "Show"),
      ...[3, 6, 12, 24].map((n) => h("a.button", { href: `/spending?from=${monthsBack(n)}&to=${ym(new Date())}` }, `${n} months`))));
  range.addEventListener("submit", (ev) => {
    ev.preventDefault();
    app.navigate(`/spending?from=${range.from.value}&to=${range.to.value}`);
  });
  const body = h("div#spending", { "aria-busy": "true" }, skeleton(2, "sk-chart"));
  root.append(h("div.page-head", null, h("h1", null, "Spending")), range, body);

  const q = `from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`;
  const [cats, flows] = await Promise.all([get(`/api/spending/categories?${q}`), get(`/api/spending/cash-flow?${q}`), loadChart()]);
  body.removeAttribute("aria-busy");
  body.replaceChildren();
  if (!cats.currencies.length && !flows.currencies.length) {
    body.append(h("p.card.muted", null, "No spending in these months yet."));
  }
  const drill = (category, month) => {
    const [start, end] = month ? monthRange(month) : [monthRange(cats.from)[0], monthRange(cats.to)[1]];
    return `/transactions?effective_category=${encodeURIComponent(category)}&start=${start}&end=${end}`;
  };
  for (const cur of cats.currencies) {
    const canvas = h("canvas", { role: "img", "aria-label": `Spending by category per month in ${cur.currency}`, height: "300" });
    const list = h("ul.legend", null, cur.categories.map((c, i) => h("li", null,
      h("span.swatch", { "aria-hidden": "true", dataset: { i: String(i % PALETTE.length) } }),
      categoryIcon(c.category),
      h("a", { href: drill(c.category), dataset: { category: c.category } }, categoryName(c.category)),
      h("span.num", null, money(c.total, cur.currency)))));
    body.append(section(`Spending by category (${cur.currency})`, h("div.chart-box", null, canvas), list));
    for (const sw of list.querySelectorAll(".swatch")) sw.style.background = PALETTE[Number(sw.dataset.i)];
    const chart = new window.Chart(canvas, {
      type: "bar",
      data: {
        labels: cur.months.map(monthName),
        datasets: cur.categories.map((c, i) => ({ label: categoryName(c.category), data: c.totals.map(Number), backgroundColor: PALETTE[i % PALETTE.length], category: c.category })),
      },
      options: {
        responsive: true, maintainAspectRatio: false, animation: false,
        scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true } },
        plugins: { legend: { display: false }, tooltip: { callbacks: { label: (ctx) => `${ctx.dataset.label}: ${money(ctx.parsed.y, cur.currency)}` } } },
        onClick: (ev, elements) => {
          const e = elements[0];
          if (!e) return;
          app.navigate(drill(chart.data.datasets[e.datasetIndex].category, cur.months[e.index]));
        },
        onHover: (ev, elements) => { ev.native.target.style.cursor = elements.length ? "pointer" : "default"; },
      },
    });
    charts.push(chart);
  }
  for (const cur of flows.currencies) {
    const canvas = h("canvas", { role: "img", "aria-label": `Income and spending per month in ${cur.currency}`, height: "260" });
    const table = h("table.flow-table", null, h("caption.visually-hidden", null, `Income and spending in ${cur.currency}`),
      h("thead", null, h("tr", null, ["Month", "Income", "Spending", "Net"].map((t, i) => h("th", { scope: "col", class: i ? "num" : "" }, t)))),
      h("tbody", null, cur.months.slice().reverse().map((m) => h("tr", null, h("th", { scope: "row" }, monthName(m.month)),
        h("td.num", null, money(m.income, cur.currency)), h("td.num", null, money(m.spending, cur.currency)),
        h("td", { class: Number(m.net) < 0 ? "num neg" : "num pos" }, money(m.net, cur.currency))))));
    body.append(section(`Income vs spending (${cur.currency})`, h("div.chart-box.short", null, canvas),
      h("details", null, h("summary", null, "As a table"), h("div.table-scroll", { tabindex: "0", role: "region", "aria-label": "Scrollable table" }, table))));
    charts.push(new window.Chart(canvas, {
      type: "line",
      data: {
        labels: cur.months.map((m) => monthName(m.month)),
        datasets: [
          { label: "Income", data: cur.months.map((m) => Number(m.income)), borderColor: "#1b7f3b", backgroundColor: "#1b7f3b", tension: 0.2 },
          { label: "Spending", data: cur.months.map((m) => Number(m.spending)), borderColor: "#b3261e", backgroundColor: "#b3261e", tension: 0.2 },
        ],
      },
      options: { responsive: true, maintainAspectRatio: false, animation: false, scales: { y: { beginAtZero: true } },
        plugins: { tooltip: { callbacks: { label: (ctx) => `${ctx.dataset.label}: ${money(ctx.parsed.y, cur.currency)}` } } } },
    }));
  }
  return {
    unmount() { charts.forEach((c) => c.destroy()); },
    async onEvent(name, data) {
      if ((name === "sync_finished" && !data.error) || name === "lagged") app.navigate(location.pathname + location.search, { replace: true });
    },
  };
}
