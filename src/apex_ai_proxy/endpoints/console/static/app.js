// The console's core: the session (login, CSRF token), the admin API client, the page router,
// the theme. The pages themselves are in pages.js. Everything shown comes from /admin/.
"use strict";

const Console = (window.Console = { pages: {}, csrf: null, timer: null });

// --- the admin API --------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, message, code) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

Console.api = async function api(method, path, body) {
  const headers = {};
  if (method !== "GET" && Console.csrf) headers["x-csrf-token"] = Console.csrf;
  if (body !== undefined) headers["content-type"] = "application/json";
  const resp = await fetch(path, {
    method, headers, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await resp.json().catch(() => ({}));
  if (!resp.ok) {
    const err = data.error || {};
    if (resp.status === 401 && path !== "/admin/session") showLogin();
    const error = new ApiError(resp.status, err.message || resp.statusText, err.code);
    error.data = data; // e.g. a refused reload's `problems`
    throw error;
  }
  return data;
};

// --- small DOM helpers ----------------------------------------------------------------------

// h("tag.class", {attrs}, children...): text children are text nodes (never parsed as HTML).
Console.h = function h(spec, attrs, ...children) {
  const [tag, ...classes] = spec.split(".");
  const el = document.createElement(tag || "div");
  if (classes.length) el.className = classes.join(" ");
  for (const [name, value] of Object.entries(attrs || {})) {
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (value !== undefined && value !== null && value !== false) el.setAttribute(name, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
};

Console.fmt = {
  int: (v) => (v === null || v === undefined ? "–" : Math.round(v).toLocaleString("en")),
  ms: (v) => (v === null || v === undefined ? "–" : v >= 1000 ? (v / 1000).toFixed(2) + " s"
    : v < 10 ? Number(v.toFixed(1)) + " ms" : Math.round(v) + " ms"),
  pct: (v) => (v === null || v === undefined ? "–" : (v * 100).toFixed(1) + " %"),
  usd: (v) => (v === null || v === undefined ? "–" : "$" + Number(v).toFixed(4)),
  time: (s) => (s ? new Date(s * 1000).toLocaleString() : "–"),
  clock: (s) => (s ? new Date(s * 1000).toLocaleTimeString() : "–"),
};

// --- session --------------------------------------------------------------------------------

function showLogin() {
  stopTimer();
  document.getElementById("shell").hidden = true;
  document.getElementById("login").hidden = false;
  document.getElementById("login-token").focus();
}

async function showShell() {
  document.getElementById("login").hidden = true;
  document.getElementById("shell").hidden = false;
  await route();
}

async function start() {
  applyTheme(localStorage.getItem("apex-theme"));
  document.getElementById("login-form").addEventListener("submit", login);
  document.getElementById("logout").addEventListener("click", logout);
  document.getElementById("theme").addEventListener("click", toggleTheme);
  window.addEventListener("hashchange", route);
  try {
    const who = await Console.api("GET", "/admin/session");
    Console.csrf = who.csrf;
    await showShell();
  } catch (err) {
    showLogin();
  }
}

async function login(event) {
  event.preventDefault();
  const field = document.getElementById("login-token");
  const out = document.getElementById("login-error");
  out.textContent = "";
  try {
    const who = await Console.api("POST", "/admin/session", { token: field.value });
    Console.csrf = who.csrf;
    field.value = "";
    await showShell();
  } catch (err) {
    out.textContent = err.message;
  }
}

async function logout() {
  try { await Console.api("DELETE", "/admin/session"); } catch (err) { /* already out */ }
  Console.csrf = null;
  showLogin();
}

// --- router ---------------------------------------------------------------------------------

function stopTimer() {
  if (Console.timer) clearInterval(Console.timer);
  Console.timer = null;
}

// Pages call this to refresh on their own; leaving the page stops it.
Console.every = function every(ms, fn) {
  stopTimer();
  Console.timer = setInterval(fn, ms);
};

async function route() {
  if (document.getElementById("shell").hidden) return;
  stopTimer();
  const [name, ...rest] = (location.hash.replace(/^#\/?/, "") || "overview").split("/");
  const page = Console.pages[name] || Console.pages.overview;
  for (const link of document.querySelectorAll("#nav a")) {
    link.classList.toggle("active", link.dataset.page === name);
  }
  const main = document.getElementById("page");
  main.replaceChildren();
  try {
    await page(main, rest.map(decodeURIComponent));
  } catch (err) {
    main.append(Console.h("p.error", {}, err.message));
  }
}

// --- theme ----------------------------------------------------------------------------------

function applyTheme(theme) {
  const dark = theme ? theme === "dark" : matchMedia("(prefers-color-scheme: dark)").matches;
  document.documentElement.dataset.theme = dark ? "dark" : "light";
}

function toggleTheme() {
  const next = document.documentElement.dataset.theme === "dark" ? "light" : "dark";
  localStorage.setItem("apex-theme", next);
  applyTheme(next);
  route(); // charts take their colours when drawn
}

window.addEventListener("DOMContentLoaded", start);
