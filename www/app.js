// The app page: language choice, offline install (service worker). The reader itself is <xray-reader>.
import { LANGUAGES, loadMessages, pickLanguage } from "./xray-reader.js";

const STORAGE_KEY = "xray-reader.lang";
const select = document.getElementById("lang");
const reader = document.getElementById("reader");

async function setLanguage(lang) {
  const m = await loadMessages(lang);
  document.documentElement.lang = lang;
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = m[el.dataset.i18n];
  document.title = m.title;
  select.value = lang;
  select.setAttribute("aria-label", m.language);
  reader.setAttribute("lang", lang);
}

/**
 * A language's name in itself ("Français"), from the browser's own data (Intl.DisplayNames), so that filling
 * the menu does not download every catalog while the reader starts; the catalog's `language_name` where the
 * browser lacks it.
 */
async function languageName(code) {
  try {
    const name = new Intl.DisplayNames([code], { type: "language" }).of(code);
    if (name && name !== code) return name.charAt(0).toLocaleUpperCase(code) + name.slice(1);
  } catch {
    /* no Intl.DisplayNames */
  }
  return (await loadMessages(code)).language_name;
}

async function main() {
  for (const code of LANGUAGES) {
    const opt = document.createElement("option");
    opt.value = code;
    opt.textContent = await languageName(code);
    select.append(opt);
  }
  let stored = null;
  try {
    stored = localStorage.getItem(STORAGE_KEY);
  } catch {
    stored = null;
  }
  await setLanguage(LANGUAGES.includes(stored) ? stored : pickLanguage());
  select.addEventListener("change", () => {
    try {
      localStorage.setItem(STORAGE_KEY, select.value);
    } catch {
      /* private mode: the choice lasts for this visit */
    }
    setLanguage(select.value);
  });

  const state = document.getElementById("offline-state");
  if ("serviceWorker" in navigator) {
    try {
      // Install the offline copy once the reader is ready (or after 10 s): by then the wasm and the model
      // are in the HTTP cache, so the install revalidates them (304) instead of downloading them again, and
      // it does not compete with the first load on a slow connection.
      const element = document.querySelector("xray-reader");
      await new Promise((resolve) => {
        if (!element || element.readyAt) return resolve();
        element.addEventListener("ready", resolve, { once: true });
        setTimeout(resolve, 10000);
      });
      await navigator.serviceWorker.register("sw.js", { scope: "./" });
      await navigator.serviceWorker.ready;
      state.textContent = "Available offline.";
      document.documentElement.dataset.offlineReady = "true";
    } catch (e) {
      state.textContent = `Offline use unavailable: ${e.message}`;
    }
  }
}

main();
