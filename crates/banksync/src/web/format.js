// How the page shows money, dates and categories.
import { h } from "./ui.js";

// Plaid's 16 personal-finance-category primaries and their vendored lucide icons (style.css masks them).
export const PRIMARY_CATEGORIES = [
  "INCOME", "TRANSFER_IN", "TRANSFER_OUT", "LOAN_PAYMENTS", "BANK_FEES", "ENTERTAINMENT", "FOOD_AND_DRINK",
  "GENERAL_MERCHANDISE", "HOME_IMPROVEMENT", "MEDICAL", "PERSONAL_CARE", "GENERAL_SERVICES",
  "GOVERNMENT_AND_NON_PROFIT", "TRANSPORTATION", "TRAVEL", "RENT_AND_UTILITIES",
];
const CATEGORY_ICONS = {
  INCOME: "banknote", TRANSFER_IN: "arrow-down-left", TRANSFER_OUT: "arrow-up-right", LOAN_PAYMENTS: "landmark",
  BANK_FEES: "receipt", ENTERTAINMENT: "clapperboard", FOOD_AND_DRINK: "utensils",
  GENERAL_MERCHANDISE: "shopping-bag", HOME_IMPROVEMENT: "hammer", MEDICAL: "stethoscope",
  PERSONAL_CARE: "scissors", GENERAL_SERVICES: "briefcase", GOVERNMENT_AND_NON_PROFIT: "building-2",
  TRANSPORTATION: "car", TRAVEL: "plane", RENT_AND_UTILITIES: "house", UNCATEGORIZED: "circle-help",
};

const sentence = (code) => {
  const words = code.toLowerCase().split("_").filter(Boolean).join(" ");
  return words.charAt(0).toUpperCase() + words.slice(1);
};

// FOOD_AND_DRINK → "Food and drink"; a user's own category stays as typed.
export function categoryName(code) {
  if (!code) return "Uncategorized";
  if (/^[A-Z0-9_]+$/.test(code)) return sentence(code);
  return code;
}

// FOOD_AND_DRINK_COFFEE (under FOOD_AND_DRINK) → "Coffee".
export function detailedName(detailed, primary) {
  if (!detailed) return "";
  const rest = primary && detailed.startsWith(primary + "_") ? detailed.slice(primary.length + 1) : detailed;
  return sentence(rest);
}

export function categoryIcon(code) {
  const icon = CATEGORY_ICONS[code] || (code && /^[A-Z_]+$/.test(code) ? "circle-help" : "tag");
  return h("span.cat-icon", { "aria-hidden": "true", dataset: { icon } });
}

// The category a transaction counts under: the user's, else Plaid's primary.
export const effectiveCategory = (t) => t.user_category || t.category || "UNCATEGORIZED";

const formatters = new Map();
function formatter(currency, signed) {
  const key = `${currency}|${signed}`;
  if (!formatters.has(key)) {
    let f;
    try {
      f = new Intl.NumberFormat(undefined, { style: "currency", currency: currency || "USD", signDisplay: signed ? "exceptZero" : "auto" });
    } catch {
      f = new Intl.NumberFormat(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2, signDisplay: signed ? "exceptZero" : "auto" });
    }
    formatters.set(key, f);
  }
  return formatters.get(key);
}

// A balance or total as it is.
export function money(amount, currency) {
  if (amount == null || amount === "") return "—";
  return formatter(currency, false).format(Number(amount));
}

// A transaction amount from the user's side: Plaid's positive (money out) shows as −12.30, money in as +2,923.34.
export function flow(amount, currency) {
  const n = -Number(amount);
  const el = h("span.amount", { class: n < 0 ? "amount out" : n > 0 ? "amount in" : "amount" }, formatter(currency, true).format(n));
  return el;
}

export function when(iso) {
  if (!iso) return "never";
  const d = new Date(iso);
  return d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

export function ago(iso) {
  if (!iso) return "never";
  const s = Math.round((Date.now() - new Date(iso).getTime()) / 1000);
  if (s < 45) return "just now";
  const units = [["year", 31536000], ["month", 2592000], ["day", 86400], ["hour", 3600], ["minute", 60]];
  const rtf = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
  for (const [unit, size] of units) if (Math.abs(s) >= size) return rtf.format(-Math.round(s / size), unit);
  return rtf.format(-s, "second");
}

export function day(date) {
  if (!date) return "";
  const [y, m, d] = date.split("-").map(Number);
  return new Date(y, m - 1, d).toLocaleDateString(undefined, { day: "numeric", month: "short", year: "numeric" });
}

export function monthName(ym) {
  const [y, m] = ym.split("-").map(Number);
  return new Date(y, m - 1, 1).toLocaleDateString(undefined, { month: "short", year: "numeric" });
}

// First and last day of a YYYY-MM month.
export function monthRange(ym) {
  const [y, m] = ym.split("-").map(Number);
  const last = new Date(Date.UTC(y, m, 0)).getUTCDate();
  return [`${ym}-01`, `${ym}-${String(last).padStart(2, "0")}`];
}

export function initials(name) {
  const words = (name || "?").replace(/[^\p{L}\p{N} ]/gu, " ").split(/\s+/).filter(Boolean);
  return ((words[0] || "?")[0] + (words[1] ? words[1][0] : "")).toUpperCase();
}

// The merchant's logo through banksync's proxy, else the category icon, else initials.
export function avatar(t) {
  const box = h("span.avatar", { "aria-hidden": "true" });
  const fallback = () => {
    const cat = effectiveCategory(t);
    box.replaceChildren(cat && cat !== "UNCATEGORIZED" ? categoryIcon(cat) : h("span.initials", null, initials(t.display_name)));
  };
  if (t.logo_path) {
    const img = h("img", { src: t.logo_path, alt: "", loading: "lazy", width: "32", height: "32" });
    img.addEventListener("error", fallback, { once: true });
    box.append(img);
  } else {
    fallback();
  }
  return box;
}

export const accountLabel = (a) => `${a.name}${a.mask ? " ••" + a.mask : ""}`;
