// The faces web page: upload photos, browse recent results, one result with its face boxes, the
// people recognition knows (name, merge, correct, search by photo), and a live panel of the
// pipeline's stages. Plain JavaScript, no build step, no third-party code;
// everything it talks to is the HTTP API of `faces serve` (docs/http.md).
"use strict";

(() => {
  const TOKEN_KEY = "faces.apiToken";
  const STATUS_EVERY_MS = 3000;
  const GALLERY_EVERY_MS = 5000;
  const RESULT_POLL_MS = 600;
  const RESULT_POLL_LIMIT_MS = 10 * 60 * 1000;
  // A finished result of an earlier job for the same photo can be there before this job's one.
  const OTHER_JOB_GRACE_MS = 60 * 1000;
  const GALLERY_LIMIT = 24;
  const GALLERY_LOOKAHEAD = 5;  // pages read ahead for one that adds a card to the gallery
  const SEARCH_DELAY_MS = 300;
  const UPLOADS_AT_ONCE = 3;
  const BUSY_RETRIES = 20;
  const SVG_NS = "http://www.w3.org/2000/svg";

  const $ = (id) => document.getElementById(id);
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  // ---- the API ---------------------------------------------------------------------------

  function token() {
    try {
      return localStorage.getItem(TOKEN_KEY) || "";
    } catch (_) {
      return "";  // storage disabled: no token
    }
  }

  async function api(path, options = {}) {
    const headers = new Headers(options.headers || {});
    const bearer = token();
    if (bearer) headers.set("Authorization", `Bearer ${bearer}`);
    headers.set("Accept", "application/json");
    const response = await fetch(path, { ...options, headers });
    if (response.status === 401 || response.status === 403) askForToken(response.status);
    return response;
  }

  /** The response, or null when the server could not be reached: `message` then says so. */
  async function answer(path, message, options = {}) {
    try {
      return await api(path, options);
    } catch (error) {
      message.textContent = unreachable(error);
      return null;
    }
  }

  /** What a request that got no answer says. */
  function unreachable(error) {
    return `Could not reach the server (${error.message}).`;
  }

  /** What a failed step says: fetch rejects with a TypeError when no answer came; others say why. */
  function failure(error) {
    return error instanceof TypeError ? unreachable(error) : error.message;
  }

  /** The message of an error answer: the API answers errors as JSON. */
  async function errorText(response) {
    let detail = "";
    try {
      const body = await response.json();
      const error = body && (body.error || body.detail || body.message);
      if (typeof error === "string") detail = error;
      else if (error && typeof error === "object") detail = error.message || error.type || JSON.stringify(error);
    } catch (_) {
      // not JSON: the status line says enough
    }
    return `${response.status} ${response.statusText || ""}`.trim() + (detail ? `: ${detail}` : "");
  }

  const resultUrl = (id) => `/v1/results/${encodeURIComponent(id)}`;
  const pictureUrl = (id) => `${resultUrl(id)}/picture`;
  // The photo with nothing drawn on it: the result page draws the one annotation itself.
  const photoUrl = (id) => `${resultUrl(id)}/photo`;

  /** Shows a picture in an <img>: straight from its URL, or with the token when there is one
   * (an <img> cannot send an Authorization header, so then it is fetched as a blob). */
  async function setPicture(img, url) {
    if (img.dataset.src === url) return;
    img.dataset.src = url;
    if (!token()) {
      img.src = url;
      return;
    }
    const response = await api(url, { headers: { Accept: "image/*" } });
    if (!response.ok || img.dataset.src !== url) return;
    const blobUrl = URL.createObjectURL(await response.blob());
    if (img.src.startsWith("blob:")) URL.revokeObjectURL(img.src);
    img.src = blobUrl;
  }

  // ---- formatting ------------------------------------------------------------------------

  const isNum = (v) => typeof v === "number" && Number.isFinite(v);
  const fixed = (v, digits = 1) => (isNum(v) ? v.toFixed(digits) : "—");
  const count = (v) => (isNum(v) ? v.toLocaleString("en") : "—");
  const percent = (v) => (isNum(v) ? `${Math.round(v * 100)} %` : "—");
  const basename = (path) => (path ? String(path).split(/[\\/]/).pop() : "");

  function facesOf(item) {
    return Array.isArray(item.faces) ? item.faces : null;
  }

  function faceCount(item) {
    const faces = facesOf(item);
    return faces ? faces.length : null;
  }

  function nameOf(result) {
    return basename(result.image && result.image.path) || result.image_id;
  }

  function plural(n, word) {
    return `${n} ${word}${n === 1 ? "" : "s"}`;
  }

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("data-") || key.startsWith("aria-") || key === "role") node.setAttribute(key, value);
      else node[key] = value;
    }
    for (const child of children) if (child !== null && child !== undefined) node.append(child);
    return node;
  }

  function svg(tag, attrs = {}) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
    return node;
  }

  function statusBadge(status) {
    const text = status === "dead_lettered" ? "dead-lettered" : status || "unknown";
    return el("span", { class: `badge badge-${status || "unknown"}`, text });
  }

  /** "Face 1: 34.2 y, Woman (93 %)" for each face, each age also in data-age. */
  function faceList(result) {
    const faces = facesOf(result) || [];
    const list = el("ul", { class: "face-list" });
    faces.forEach((face, i) => {
      const gender = face.gender || {};
      list.append(el("li", { class: "face-item", "data-face": String(i) },
        `Face ${i + 1}: `,
        el("span", { class: "age", "data-age": isNum(face.age) ? String(face.age) : "", text: isNum(face.age) ? `${fixed(face.age)} y` : "age unknown" }),
        gender.label ? `, ${gender.label} (${percent(gender.confidence)})` : ""));
    });
    return list;
  }

  // ---- the token ------------------------------------------------------------------------

  function askForToken(status) {
    const box = $("token-box");
    box.open = true;
    $("token-message").textContent = status === 401
      ? (token() ? "The server refused this token: enter the right one." : "This server needs an API token: enter it here.")
      : "This token may not do that.";
  }

  function setUpToken() {
    $("token-input").value = token();
    $("token-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const value = $("token-input").value.trim();
      try {
        if (value) localStorage.setItem(TOKEN_KEY, value);
        else localStorage.removeItem(TOKEN_KEY);
        $("token-message").textContent = value ? "Saved." : "Forgotten.";
      } catch (_) {
        $("token-message").textContent = "This browser does not let the page store it.";
      }
      refreshEverything();
    });
    $("token-clear").addEventListener("click", () => {
      $("token-input").value = "";
      try { localStorage.removeItem(TOKEN_KEY); } catch (_) { /* nothing stored */ }
      $("token-message").textContent = "Forgotten.";
    });
  }

  // ---- uploads --------------------------------------------------------------------------

  function uploadItem(file) {
    const status = el("span", { class: "upload-status", text: "waiting…" });
    const detail = el("div", { class: "upload-detail" });
    const name = el("span", { class: "upload-name", text: file.name });
    const item = el("li", { class: "upload", "data-state": "queued" }, name, " ", status, detail);
    $("uploads").prepend(item);
    return {
      item,
      state(state, text) {
        item.dataset.state = state;
        status.textContent = text;
      },
      accepted(imageId) {
        item.dataset.imageId = imageId;
        this.state("pending", "analysing…");
      },
      done(result) {
        item.dataset.imageId = result.image_id;
        const n = faceCount(result) || 0;
        this.state(result.status === "ok" ? "done" : "error",
          result.status === "ok" ? plural(n, "face") : `error: ${(result.error && (result.error.message || result.error.type)) || "failed"}`);
        name.replaceChildren(el("a", { href: `#/results/${encodeURIComponent(result.image_id)}`, text: file.name }));
        detail.replaceChildren(faceList(result));
      },
      fail(message) {
        this.state("failed", message);
      },
    };
  }

  /** Every file gets its line at once; UPLOADS_AT_ONCE are sent at a time, so that a folder's
   * worth of photos leaves the browser's few connections free for the status panel. */
  async function uploadFiles(files) {
    const queue = [];
    for (const file of Array.from(files)) {
      const ui = uploadItem(file);
      if (file.type && !file.type.startsWith("image/")) ui.fail(`not an image (${file.type}): not sent`);
      else queue.push([file, ui]);
    }
    const worker = async () => {
      while (queue.length) await uploadOne(...queue.shift());
    };
    await Promise.all(Array.from({ length: UPLOADS_AT_ONCE }, worker));
  }

  /** POST /v1/images; while the pipeline is full (429) or Redis away (503), again after the
   * Retry-After the API gives. */
  async function postImage(file, ui) {
    for (let attempt = 1; ; attempt += 1) {
      const form = new FormData();
      form.append("file", file, file.name);
      ui.state("uploading", "uploading…");
      const response = await api("/v1/images", { method: "POST", body: form });
      if ((response.status !== 429 && response.status !== 503) || attempt >= BUSY_RETRIES) return response;
      const waitS = Math.min(Number(response.headers.get("Retry-After")) || 2, 30);
      ui.state("busy", `${response.status === 429 ? "pipeline full" : "Redis unavailable"}: trying again in ${waitS} s`);
      await sleep(waitS * 1000);
    }
  }

  async function uploadOne(file, ui) {
    try {
      const response = await postImage(file, ui);
      if (response.status === 200) {
        ui.done(await response.json());
      } else if (response.status === 202) {
        const accepted = await response.json();
        ui.accepted(accepted.image_id);
        const result = await waitForResult(accepted);
        if (result) ui.done(result);
        else ui.fail("no result yet: see Recent results later");
      } else {
        ui.fail(await errorText(response));
        return;
      }
      loadGallery();
    } catch (error) {
      ui.fail(error instanceof TypeError ? `could not reach the server (${error.message})` : error.message);
    }
  }

  /** Polls until this job's result is there; null after RESULT_POLL_LIMIT_MS. */
  async function waitForResult(accepted) {
    const url = accepted.status_url || resultUrl(accepted.image_id);
    const started = Date.now();
    while (Date.now() - started < RESULT_POLL_LIMIT_MS) {
      const response = await api(url);
      if (response.status === 200) {
        const result = await response.json();
        const sameJob = !accepted.job_id || !result.job_id || result.job_id === accepted.job_id;
        if (sameJob || Date.now() - started > OTHER_JOB_GRACE_MS) return result;
      } else if (response.status === 404) {
        // The job was in Redis before the 202: it ended without a result (dead-lettered by the sink).
        throw new Error("the job ended without a result (see `faces dlq list`)");
      } else if (response.status !== 202) {
        throw new Error(await errorText(response));
      }
      await sleep(RESULT_POLL_MS);
    }
    return null;
  }

  /** Photos dropped on `zone` or picked in `input` go to `take` (an array of Files). */
  function dropZone(zone, input, take) {
    input.addEventListener("change", () => {
      const files = Array.from(input.files || []);
      input.value = "";  // the same photo can be picked again
      take(files);
    });
    for (const type of ["dragenter", "dragover"]) {
      zone.addEventListener(type, (event) => {
        event.preventDefault();
        zone.classList.add("dragging");
      });
    }
    for (const type of ["dragleave", "drop"]) {
      zone.addEventListener(type, () => zone.classList.remove("dragging"));
    }
    zone.addEventListener("drop", (event) => {
      event.preventDefault();
      take(Array.from(event.dataTransfer ? event.dataTransfer.files : []));
    });
  }

  function setUpUploads() {
    dropZone($("drop-zone"), $("file-input"), uploadFiles);
    // A photo dropped next to the zone must not make the browser navigate away to it.
    window.addEventListener("dragover", (event) => event.preventDefault());
    window.addEventListener("drop", (event) => event.preventDefault());
  }

  // ---- the gallery ----------------------------------------------------------------------

  let galleryCursor = null;     // where the page after the cards shown starts
  let galleryNext = null;       // that page, fetched ahead: "Older results" shows only if it adds a card
  let galleryGeneration = 0;    // a newer load (filter changed) makes older answers moot

  /** A card of the gallery: an item of GET /v1/results holds the stored document as `result`
   * (null once it expired, or for a dead letter, whose reason is in `error`). */
  function galleryCard(item) {
    const id = item.image_id;
    if (item.status === "dead_lettered") return deadLetterCard(item);
    const expired = item.result === null;
    const doc = item.result || item;
    const status = doc.status || item.status;
    const n = expired || status === "error" ? null : faceCount(doc);
    const name = nameOf(doc);
    const figure = el("div", { class: "thumb" });
    if (status === "ok" && !expired) {
      const img = el("img", { alt: `Annotated photo ${name}${n === null ? "" : `, ${plural(n, "face")}`}`, loading: "lazy" });
      figure.append(img);
      setPicture(img, pictureUrl(id)).catch(() => {});
    } else {
      const why = expired ? "result expired" : status === "error" ? "no picture (error)" : "analysing…";
      figure.append(el("span", { class: "no-picture", text: why }));
    }
    const faces = facesOf(doc);
    const ages = faces ? faces.filter((f) => isNum(f.age)).map((f) => fixed(f.age)) : [];
    const error = status === "error" && doc.error ? `${doc.error.stage || ""} ${doc.error.type || ""}`.trim() : "";
    return el("li", { class: "gallery-item", "data-image-id": id, "data-key": cardKey(item) },
      el("a", { href: `#/results/${encodeURIComponent(id)}`, class: "gallery-link" },
        figure,
        el("span", { class: "gallery-name", text: name }),
        el("span", { class: "gallery-meta" }, statusBadge(status), " ",
          el("span", { class: "face-count", text: n === null ? "" : plural(n, "face") })),
        ages.length ? el("span", { class: "gallery-ages", text: `ages ${ages.join(", ")}` }) : null,
        error ? el("span", { class: "gallery-reason", text: error, title: doc.error.message || "" }) : null));
  }

  /** A dead letter: a job that ended without a result; its reason instead of a picture. */
  function deadLetterCard(item) {
    const error = item.error || {};
    return el("li", { class: "gallery-item", "data-image-id": item.image_id, "data-key": cardKey(item) },
      el("div", { class: "gallery-link" },
        el("div", { class: "thumb" }, el("span", { class: "no-picture", text: "no result" })),
        el("span", { class: "gallery-name", text: item.image_id }),
        el("span", { class: "gallery-meta" }, statusBadge(item.status)),
        el("span", { class: "gallery-reason", text: `${error.stage || "?"}: ${error.type || "?"}`, title: error.message || "" }),
        el("span", { class: "gallery-meta", text: "`faces dlq list` says more" })));
  }

  function cardKey(item) {
    const doc = item.result || {};
    return `${item.image_id}|${item.status}|${doc.job_id || item.job_id || ""}|${doc.processed_at || item.finished_at || ""}`;
  }

  function galleryFilter() {
    return { status: $("gallery-status").value, q: $("gallery-search").value.trim() };
  }

  /** One page of GET /v1/results with the gallery's filter, from `cursor` (null: the newest). */
  async function fetchGalleryPage(cursor) {
    const filter = galleryFilter();
    const params = new URLSearchParams({ limit: String(GALLERY_LIMIT) });
    if (filter.status) params.set("status", filter.status);
    if (filter.q) params.set("q", filter.q);
    if (cursor) params.set("cursor", cursor);
    const response = await api(`/v1/results?${params}`);
    if (!response.ok) throw new Error(`Could not list results: ${await errorText(response)}`);
    return response.json();
  }

  /** The next page after `cursor` that adds a card not shown yet (a photo submitted again is
   * announced again: a page may hold only images already shown); null when there is none. */
  async function findOlder(cursor, generation) {
    for (let pages = 0; cursor && pages < GALLERY_LOOKAHEAD; pages += 1) {
      const body = await fetchGalleryPage(cursor);
      if (generation !== galleryGeneration) return null;
      const shown = new Set(Array.from($("gallery").children).map((li) => li.dataset.imageId));
      if ((body.items || []).some((item) => item.image_id && !shown.has(item.image_id))) return body;
      cursor = body.next_cursor || null;
    }
    return null;
  }

  /** Newest results first (with the filter); `more` appends the older page fetched ahead. */
  async function loadGallery(more = false) {
    const message = $("gallery-message");
    const generation = more ? galleryGeneration : ++galleryGeneration;
    try {
      let body = more ? galleryNext : null;
      if (!body) body = more ? null : await fetchGalleryPage(null);
      if (!body || generation !== galleryGeneration) return;
      galleryCursor = body.next_cursor || null;
      renderGallery(body.items || [], more);
      const filtered = galleryFilter();
      const shown = $("gallery").children.length;
      message.textContent = shown ? "" : filtered.status || filtered.q
        ? "No results match." : readOnly ? "No results in this folder." : "No results yet: analyse a photo above.";
      galleryNext = await findOlder(galleryCursor, generation);
      if (generation === galleryGeneration) $("gallery-more").hidden = !galleryNext;
    } catch (error) {
      if (generation !== galleryGeneration) return;
      message.textContent = failure(error);
    }
  }

  function renderGallery(items, append) {
    const gallery = $("gallery");
    const existing = new Map(Array.from(gallery.children).map((li) => [li.dataset.key, li]));
    // One card per image: a photo submitted twice is announced twice, with one stored result.
    const seen = new Set();
    const unique = items.filter((item) => item && item.image_id && !seen.has(item.image_id) && seen.add(item.image_id));
    // Keep a card (and its loaded picture) that did not change.
    const cards = unique.map((item) => existing.get(cardKey(item)) || galleryCard(item));
    if (append) {
      const have = new Set(Array.from(gallery.children).map((li) => li.dataset.imageId));
      gallery.append(...cards.filter((c) => !have.has(c.dataset.imageId)));
    } else {
      // Cards dropped from the gallery let go of their pictures (blob URLs with a token).
      const kept = new Set(cards);
      for (const li of gallery.children) {
        if (kept.has(li)) continue;
        for (const img of li.querySelectorAll("img")) if (img.src.startsWith("blob:")) URL.revokeObjectURL(img.src);
      }
      gallery.replaceChildren(...cards);
    }
  }

  // ---- one result -----------------------------------------------------------------------

  let shownResultId = null;

  async function showResult(id) {
    shownResultId = id;
    $("result-title").textContent = `Result: ${id}`;
    $("result-message").textContent = "Loading…";
    $("result-figure").hidden = true;
    $("faces-table").hidden = true;
    $("result-summary").replaceChildren();
    $("result-json").textContent = "";
    while (shownResultId === id) {
      const response = await answer(resultUrl(id), $("result-message"));
      if (!response || shownResultId !== id) return;
      if (response.status === 200) {
        renderResult(await response.json());
        return;
      }
      if (response.status === 202) {
        $("result-message").textContent = "Still being analysed…";
        await sleep(1000);
        continue;
      }
      $("result-message").textContent = response.status === 404
        ? "No result with this id (results are kept for a limited time)."
        : `Could not load the result: ${await errorText(response)}`;
      return;
    }
  }

  function renderResult(result) {
    const faces = facesOf(result) || [];
    const image = result.image || {};
    $("result-title").textContent = `Result: ${nameOf(result)}`;
    $("result-message").textContent = "";
    const summary = [
      ["Image id", result.image_id],
      ["Status", statusBadge(result.status)],
      ["Faces", String(faces.length)],
      ["Size", isNum(image.width) ? `${image.width} × ${image.height} px` : "—"],
      ["Age/gender model", (result.models && result.models.agegender) || "none"],
      ["Processed", result.processed_at || "—"],
    ];
    if (result.error) summary.push(["Error", `${result.error.stage || ""} ${result.error.type || ""}: ${result.error.message || ""}`.trim()]);
    for (const [key, value] of Object.entries(result.metadata || {})) summary.push([`Metadata: ${key}`, String(value)]);
    for (const [key, note] of Object.entries(result.notes || {})) {
      summary.push([`Note (${key})`, (note && note.message) || JSON.stringify(note)]);
    }
    $("result-summary").replaceChildren(...summary.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", {}, v)]));
    $("result-json").textContent = JSON.stringify(result, null, 1);
    renderFigure(result, faces);
    renderFaceTable(faces);
  }

  function renderFigure(result, faces) {
    const figure = $("result-figure");
    if (result.status !== "ok") {
      figure.hidden = true;
      return;
    }
    const image = result.image || {};
    const img = $("result-image");
    const boxes = $("result-boxes");
    img.alt = `Photo ${nameOf(result)}, ${plural(faces.length, "face")} marked over it`;
    const draw = (width, height) => {
      boxes.setAttribute("viewBox", `0 0 ${width} ${height}`);
      boxes.querySelectorAll("g").forEach((g) => g.remove());
      const size = Math.max(width, height);
      faces.forEach((face, i) => {
        const b = face.box;
        const g = svg("g", { class: "face", "data-face": String(i) });
        const title = svg("title");
        title.textContent = `Face ${i + 1}: ${isNum(face.age) ? `${fixed(face.age)} years` : "age unknown"}${face.gender && face.gender.label ? `, ${face.gender.label}` : ""}`;
        g.append(title);
        g.append(svg("rect", { class: "face-box", x: b.x, y: b.y, width: b.w, height: b.h, "vector-effect": "non-scaling-stroke" }));
        const fontSize = Math.max(12, size / 45);
        const label = `${i + 1}${isNum(face.age) ? ` · ${fixed(face.age, 0)}` : ""}`;
        // The badge under the box (inside its bottom edge when the picture ends there), and
        // never past the picture's edges: the SVG clips what lies outside.
        const labelW = fontSize * (0.56 * label.length + 0.6);
        const labelH = fontSize * 1.25;
        const left = Math.max(0, Math.min(b.x, width - labelW));
        const top = b.y + b.h + labelH <= height ? b.y + b.h : Math.max(0, b.y + b.h - labelH);
        g.append(svg("rect", { class: "face-label-bg", x: left, y: top, width: labelW, height: labelH }));
        const text = svg("text", { class: "face-label", x: left + fontSize * 0.3, y: top + fontSize, "font-size": fontSize });
        text.textContent = label;
        g.append(text);
        g.addEventListener("mouseenter", () => highlight(i, true));
        g.addEventListener("mouseleave", () => highlight(i, false));
        boxes.append(g);
      });
    };
    if (isNum(image.width) && isNum(image.height)) draw(image.width, image.height);
    else img.addEventListener("load", () => draw(img.naturalWidth, img.naturalHeight), { once: true });
    $("result-caption").textContent = `${plural(faces.length, "face")} found. This page draws each box from the result's coordinates over the photo.`;
    $("result-legend").hidden = faces.length === 0;
    figure.hidden = false;
    setPicture(img, photoUrl(result.image_id)).catch(() => {});
  }

  function highlight(i, on) {
    document.querySelectorAll(`[data-face="${i}"]`).forEach((node) => node.classList.toggle("active", on));
  }

  function renderFaceTable(faces) {
    const rows = faces.map((face, i) => {
      const gender = face.gender || {};
      const pose = face.pose || {};
      const quality = face.quality || {};
      const box = face.box || {};
      const range = Array.isArray(face.age_range) ? ` (${fixed(face.age_range[0], 0)}–${fixed(face.age_range[1], 0)})` : "";
      // data-label: the column's name, shown before each value when a phone stacks the cells.
      const row = el("tr", { class: "face-row", "data-face": String(i) },
        el("th", { scope: "row", text: `Face ${i + 1}` }),
        el("td", { class: "age", "data-label": "Age", "data-age": isNum(face.age) ? String(face.age) : "" },
          isNum(face.age) ? `${fixed(face.age)} y${range}` : "—"),
        el("td", { class: "gender", "data-label": "Gender", "data-confidence": isNum(gender.confidence) ? String(gender.confidence) : "" },
          gender.label ? `${gender.label}, ${percent(gender.confidence)}` : "—"),
        el("td", { class: "pose", "data-label": "Pose (yaw / pitch / roll, °)" }, `${fixed(pose.yaw)} / ${fixed(pose.pitch)} / ${fixed(pose.roll)}`),
        el("td", { class: "quality", "data-label": "Quality (sharpness / brightness)" }, `${fixed(quality.sharpness)} / ${fixed(quality.brightness)}`),
        el("td", { class: "box", "data-label": "Box (x, y, w × h)" }, `${box.x}, ${box.y}, ${box.w} × ${box.h}`));
      row.addEventListener("mouseenter", () => highlight(i, true));
      row.addEventListener("mouseleave", () => highlight(i, false));
      return row;
    });
    $("faces-body").replaceChildren(...rows);
    $("faces-table").hidden = faces.length === 0;
  }

  // ---- people: face thumbnails ------------------------------------------------------------

  const THUMB_PX = 128;          // a thumbnail's canvas: twice its size on screen, sharp on dense screens
  const THUMB_MARGIN = 0.25;     // the crop around a face's box, a share of the box's side on each side
  const THUMBS_AT_ONCE = 3;      // thumbnail requests and decodes at a time: the status panel keeps a connection
  const KEPT_LIMIT = 100;        // photos (JPEG bytes) and results kept for thumbnails
  const CARD_FACES = 4;          // thumbnails on a card of the people list
  const PERSON_FACES_PAGE = 48;  // faces shown at once on a person's page

  const personUrl = (id) => `/v1/people/${encodeURIComponent(id)}`;
  const personHref = (id) => `#/people/${encodeURIComponent(id)}`;
  const resultHref = (id) => `#/results/${encodeURIComponent(id)}`;
  const whoIs = (person) => person.name || "this cluster";

  /** A function that runs at most `n` works at once; the others wait for a slot. */
  function limiter(n) {
    let running = 0;
    const waiting = [];
    return async (work) => {
      if (running < n) running += 1;
      else await new Promise((resolve) => waiting.push(resolve));  // a finished work hands its slot over
      try {
        return await work();
      } finally {
        const next = waiting.shift();
        if (next) next();
        else running -= 1;
      }
    };
  }

  const thumbSlot = limiter(THUMBS_AT_ONCE);
  const keptPhotos = new Map();   // image id -> Promise of its plain photo's bytes (a Blob), null: gone
  const keptResults = new Map();  // image id -> Promise of its result, null: gone

  /** `load(id)`, once per id while its answer is final: an answer of undefined ("not now": in
   * the pipeline, a server error) is forgotten, and the next thumbnail asks again. */
  function kept(cache, id, load) {
    if (!cache.has(id)) {
      if (cache.size >= KEPT_LIMIT) cache.clear();
      const loading = thumbSlot(() => load(id)).catch(() => undefined);
      cache.set(id, loading);
      loading.then((value) => {
        if (value === undefined && cache.get(id) === loading) cache.delete(id);
      });
    }
    return cache.get(id);
  }

  async function loadResult(id) {
    const response = await api(resultUrl(id));
    if (response.status === 200) return response.json();
    return response.status === 404 ? null : undefined;
  }

  /** The plain photo's bytes; null when they are gone (404: uploads expire) or there is no
   * photo (409: an error result). Kept compressed: a decoded photo can be tens of MB. */
  async function loadPhoto(id) {
    const response = await api(photoUrl(id));
    if (response.status === 200) return response.blob();
    return response.status === 404 || response.status === 409 ? null : undefined;
  }

  /** The square around a face's box, with a margin, kept inside the picture. */
  function cropOf(box, width, height) {
    const side = Math.min(Math.max(box.w, box.h) * (1 + 2 * THUMB_MARGIN), width, height);
    const inside = (v, max) => Math.max(0, Math.min(v, max));
    return { x: inside(box.x + box.w / 2 - side / 2, width - side), y: inside(box.y + box.h / 2 - side / 2, height - side), side };
  }

  function drawFace(canvas, picture, box) {
    const crop = cropOf(box, picture.width, picture.height);
    canvas.getContext("2d").drawImage(picture, crop.x, crop.y, crop.side, crop.side, 0, 0, THUMB_PX, THUMB_PX);
  }

  function thumbFrame(label) {
    const canvas = el("canvas", { width: THUMB_PX, height: THUMB_PX, role: "img", "aria-label": label });
    return el("div", { class: "face-thumb", "data-state": "loading" }, canvas);
  }

  /** The frame shows `text` instead of a face (its state: "gone", or "waiting" to be asked again). */
  function thumbPlaceholder(frame, state, text) {
    frame.dataset.state = state;
    frame.replaceChildren(el("span", { class: "no-picture", text }));
  }

  /** Face `face` of image `imageId`, cropped here from the plain photo the API serves and the
   * box of its result (no endpoint of its own); a placeholder when the photo is gone. */
  function faceThumb(imageId, face, label) {
    const frame = thumbFrame(label);
    (async () => {
      const [result, photo] = await Promise.all([kept(keptResults, imageId, loadResult), kept(keptPhotos, imageId, loadPhoto)]);
      const found = result ? (facesOf(result) || [])[face] : null;
      if (photo === undefined || result === undefined) return thumbPlaceholder(frame, "waiting", "not ready");
      if (!photo || !found) return thumbPlaceholder(frame, "gone", "photo gone");
      const picture = await thumbSlot(() => createImageBitmap(photo));
      try {
        drawFace(frame.querySelector("canvas"), picture, found.box);
        frame.dataset.state = "drawn";
      } finally {
        picture.close();
      }
    })().catch(() => thumbPlaceholder(frame, "gone", "no picture"));
    return frame;
  }

  // ---- people: the list -------------------------------------------------------------------

  let peopleGeneration = 0;  // a newer load makes older answers moot
  // A card's thumbnails load when it comes near the screen: a library can hold thousands of clusters.
  const cardWatcher = "IntersectionObserver" in window
    ? new IntersectionObserver((entries) => {
      for (const entry of entries) {
        if (!entry.isIntersecting) continue;
        cardWatcher.unobserve(entry.target);
        fillCard(entry.target);
      }
    }, { rootMargin: "300px" })
    : null;

  async function loadPeople() {
    const generation = ++peopleGeneration;
    const message = $("people-message");
    try {
      const response = await api("/v1/people");
      if (generation !== peopleGeneration) return;
      if (!response.ok) {
        message.textContent = `Could not list the people: ${await errorText(response)}`;
        return;
      }
      renderPeople((await response.json()).people || []);
    } catch (error) {
      if (generation === peopleGeneration) message.textContent = unreachable(error);
    }
  }

  function renderPeople(people) {
    const named = people.filter((p) => p.name !== null).length;
    $("people-message").textContent = people.length
      ? `${named} named, ${plural(people.length - named, "unnamed cluster")}.`
      : "Nobody yet: faces are grouped here as photos are analysed (with recognition on).";
    if (cardWatcher) cardWatcher.disconnect();
    const cards = people.map(personCard);
    $("people").replaceChildren(...cards);
    for (const card of cards) {
      if (cardWatcher) cardWatcher.observe(card);
      else fillCard(card);
    }
  }

  function personCard(person) {
    return el("li", { class: "person-card", "data-person-id": person.id, "data-named": String(person.name !== null) },
      el("a", { href: personHref(person.id), class: "person-link" },
        el("div", { class: "face-strip" }),
        el("span", { class: "person-name", text: person.name || "Unnamed cluster" }),
        el("span", { class: "person-meta" },
          el("span", { class: "face-count", text: plural(person.faces, "face") }),
          person.references ? ` · ${plural(person.references, "reference")}` : "",
          person.name ? null : el("span", { class: "person-id", text: ` · ${person.id}` }))));
  }

  /** A card's thumbnails: the person's nearest faces (a cluster's first face is at 0). */
  async function fillCard(card) {
    const id = card.dataset.personId;
    const response = await thumbSlot(() => api(`${personUrl(id)}/faces`));
    if (!response.ok) return;
    const body = await response.json();
    const name = body.name || "Unnamed cluster";
    const faces = (body.faces || []).slice().sort((a, b) => a.distance - b.distance).slice(0, CARD_FACES);
    card.querySelector(".face-strip").replaceChildren(
      ...faces.map((f) => faceThumb(f.image_id, f.face, `${name}: face ${f.face + 1} of ${f.image_id}`)));
  }

  // ---- people: one person -----------------------------------------------------------------

  let shownPerson = null;      // the person (or cluster) on the person page, as GET /v1/people/{id} gave it
  let shownPersonId = null;
  let personNote = "";         // what the last change did, said once the page shows its outcome

  async function showPerson(id) {
    shownPersonId = id;
    shownPerson = null;
    const note = personNote;
    personNote = "";
    $("person-title").textContent = "Person";
    $("person-message").textContent = note || "Loading…";
    const response = await answer(personUrl(id), $("person-message"));
    if (!response || shownPersonId !== id) return;
    if (!response.ok) {
      showNoPerson(response.status === 404
        ? "No person or cluster with this id: it was merged into another, removed, or has no faces left."
        : `Could not load this person: ${await errorText(response)}`, note);
      return;
    }
    renderPerson(await response.json(), note);
    loadMergeChoices(id);
  }

  function showNoPerson(text, note) {
    $("person-message").textContent = note ? `${note} ${text}` : text;
    $("person-counts").textContent = "";
    $("name-form").hidden = true;
    $("merge-form").hidden = true;
    $("person-faces").replaceChildren();
    $("person-more").hidden = true;
  }

  function renderPerson(person, note) {
    shownPerson = person;
    const faces = person.faces || [];
    $("person-title").textContent = person.name || "Unnamed cluster";
    $("person-message").textContent = note;
    $("person-counts").textContent = `${plural(faces.length, "face")}`
      + (person.references ? `, enrolled from ${plural(person.references, "reference face")}` : "")
      + ` · id ${person.id}`;
    $("name-form").hidden = false;
    $("merge-form").hidden = false;
    $("name-label").textContent = person.name ? "Rename" : "Name this cluster";
    $("name-submit").textContent = person.name ? "Rename" : "Name";
    $("name-input").value = person.name || "";
    $("person-faces").replaceChildren();
    showMoreFaces();
  }

  /** The next PERSON_FACES_PAGE faces of the shown person. */
  function showMoreFaces() {
    const list = $("person-faces");
    const faces = shownPerson.faces || [];
    const shown = list.children.length;
    list.append(...faces.slice(shown, shown + PERSON_FACES_PAGE).map((f) => personFace(shownPerson, f)));
    $("person-more").hidden = list.children.length >= faces.length;
  }

  function personFace(person, face) {
    const button = el("button", { type: "button", class: "not-this", text: "Not this person" });
    button.addEventListener("click", () => notThisPerson(person, face, button));
    return el("li", { class: "person-face", "data-image-id": face.image_id, "data-face-index": String(face.face) },
      el("a", { href: resultHref(face.image_id), class: "face-photo", title: "The whole photo" },
        faceThumb(face.image_id, face.face, `Face ${face.face + 1} of ${face.image_id}`),
        el("span", { class: "face-photo-name", text: `${face.image_id}, face ${face.face + 1}` })),
      el("span", { class: "face-distance", text: `distance ${fixed(face.distance, 2)}` }),
      button);
  }

  /** POST or PATCH a JSON body to the API; the answer's JSON, or an Error saying why not. */
  async function send(method, path, body) {
    const response = await api(path, { method, headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    if (!response.ok) throw new Error(await errorText(response));
    return response.json();
  }

  /** Runs `change` for the shown person; its note is said once the page shows the outcome. */
  async function changePerson(change, controls) {
    controls.forEach((c) => { c.disabled = true; });
    try {
      const next = await change();
      if (next && next !== shownPersonId) location.hash = personHref(next);  // route() shows it
      else showPerson(shownPersonId);
    } catch (error) {
      personNote = "";
      $("person-message").textContent = failure(error);
    } finally {
      controls.forEach((c) => { c.disabled = false; });
    }
  }

  function notThisPerson(person, face, button) {
    changePerson(async () => {
      const now = await send("POST", `${personUrl(person.id)}/not`, { image_id: face.image_id, face: face.face });
      personNote = `Face ${face.face + 1} of ${face.image_id} is not ${whoIs(person)}: `
        + (now.person ? `it is ${now.person.name} now.` : "it is in a cluster of its own now.");
    }, [button]);
  }

  function setUpPersonForms() {
    $("name-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const person = shownPerson;
      const name = $("name-input").value.trim();
      if (!person || !name) return;
      changePerson(async () => {
        await send("PATCH", personUrl(person.id), { name });
        personNote = person.name ? `Renamed ${person.name} to ${name}.` : `Named ${name}: the cluster's faces are their references now.`;
      }, [$("name-submit")]);
    });
    $("merge-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const person = shownPerson;
      const option = $("merge-select").selectedOptions[0];
      if (!person || !option || !option.value) return;
      // The named one stays when a cluster meets a named person: a merge keeps the first one's name.
      const keep = !person.name && option.dataset.named === "true" ? option.value : person.id;
      const gone = keep === person.id ? option.value : person.id;
      changePerson(async () => {
        const merged = await send("POST", `${personUrl(keep)}/merge`, { other: gone });
        personNote = `Merged: ${merged.name || "this cluster"} has ${plural(merged.faces, "face")} now.`;
        return merged.id;
      }, [$("merge-submit")]);
    });
    $("person-more").addEventListener("click", showMoreFaces);
  }

  /** The people and clusters the shown one can be merged with. */
  async function loadMergeChoices(id) {
    const select = $("merge-select");
    const response = await api("/v1/people");
    if (!response.ok || shownPersonId !== id) return;
    const others = ((await response.json()).people || []).filter((p) => p.id !== id);
    select.replaceChildren(
      el("option", { value: "", text: others.length ? "Choose a person or cluster…" : "No one else yet" }),
      ...others.map((p) => el("option", { value: p.id, "data-named": String(p.name !== null),
        text: `${p.name || `Unnamed cluster ${p.id}`} (${plural(p.faces, "face")})` })));
  }

  // ---- people: search by photo ------------------------------------------------------------

  async function searchPhoto(files) {
    const [file] = files;
    const message = $("search-message");
    $("search-results").replaceChildren();
    if (!file) return;
    if (file.type && !file.type.startsWith("image/")) {
      message.textContent = `${file.name} is not an image (${file.type}).`;
      return;
    }
    message.textContent = `Looking for the faces of ${file.name}…`;
    const form = new FormData();
    form.append("file", file, file.name);
    const response = await answer("/v1/search", message, { method: "POST", body: form });
    if (!response) return;
    if (!response.ok) {
      message.textContent = `Could not search: ${await errorText(response)}`;
      return;
    }
    const faces = (await response.json()).faces || [];
    message.textContent = faces.length ? `${file.name}: ${plural(faces.length, "face")}.` : `${file.name}: no face found.`;
    let picture = null;
    try {
      picture = await createImageBitmap(file);
    } catch (_) {
      // a format this browser cannot draw: the faces without their thumbnails
    }
    $("search-results").replaceChildren(...faces.map((f) => searchFace(f, picture)));
    if (picture) picture.close();
  }

  function searchFace(found, picture) {
    const thumb = thumbFrame(`Face ${found.face + 1} of the photo searched`);
    if (picture) {
      drawFace(thumb.querySelector("canvas"), picture, found.box);
      thumb.dataset.state = "drawn";
    } else {
      thumbPlaceholder(thumb, "gone", "no preview");
    }
    const people = (found.people || []).map((p) => el("li", { class: "search-person", "data-person-id": p.id },
      el("a", { href: personHref(p.id), text: p.name || "a merged cluster" }), ` (distance ${fixed(p.distance, 2)})`));
    const nearest = (found.nearest || []).map((n) => el("li", { class: "near-face", "data-image-id": n.image_id, "data-face-index": String(n.face) },
      el("a", { href: resultHref(n.image_id), title: `${n.image_id}, face ${n.face + 1}` },
        faceThumb(n.image_id, n.face, `Face ${n.face + 1} of ${n.image_id}`)),
      el("span", { class: "near-who" }, whoLink(n)),
      el("span", { class: "face-distance", text: fixed(n.distance, 2) })));
    return el("li", { class: "search-face", "data-face-index": String(found.face) },
      thumb,
      el("div", { class: "search-detail" },
        el("h3", { text: `Face ${found.face + 1}` }),
        people.length ? el("ul", { class: "search-people" }, ...people) : el("p", { class: "hint", text: "No one named here matches this face." }),
        nearest.length ? el("p", { class: "hint", text: "The nearest faces seen before:" }) : null,
        nearest.length ? el("ul", { class: "near-faces" }, ...nearest) : null));
  }

  /** Who a stored face is: its person, its unnamed cluster, or no one (erased). */
  function whoLink(face) {
    if (face.person) return el("a", { href: personHref(face.person.id), text: face.person.name });
    if (face.cluster) return el("a", { href: personHref(face.cluster), text: "unnamed cluster" });
    return "no one";
  }

  function setUpPeople() {
    dropZone($("search-zone"), $("search-input"), searchPhoto);
    $("people-refresh").addEventListener("click", () => loadPeople());
    setUpPersonForms();
  }

  // ---- the stages panel -----------------------------------------------------------------

  // What each number means: the tooltips here and the legend in the page (index.html) and
  // under `faces status` (ops/cli/statusview.py) say the same.
  const MEANING = {
    throughput: "entries this stage handled in the last 60 s",
    lag: "entries waiting on the stage's input stream, not yet taken by a worker",
    pending: "entries a worker has taken and not finished yet",
    workers: "workers of this stage alive now (a heartbeat within the last 2 minutes)",
    oldest: "how long the oldest pending entry has been waiting",
    inflight: "photos submitted and not finished yet",
    dead_letters: "entries no stage could process, kept with the reason (`faces dlq list`)",
    results: "results announced by the sink and still listed (the newest 100,000)",
    results_rate: "results announced in the last 60 s",
    memory: "memory Redis uses",
  };

  function metric(name, label, value) {
    return [el("dt", { text: label, title: MEANING[name] }), el("dd", { "data-metric": name, text: value, title: MEANING[name] })];
  }

  function renderStatus(status) {
    if (status.read_only) return renderReadOnly(status);
    const streams = status.streams || [];
    const throughput = status.throughput_per_min || {};
    // The stage order and the live workers (heartbeats) come from the server (one definition there).
    const cards = (status.stages || []).map((stage) => {
      let stream = null;
      let group = null;
      for (const s of streams) {
        const found = (s.groups || []).find((g) => g.name === stage);
        if (found) { stream = s; group = found; break; }
      }
      const live = (status.workers || []).filter((w) => w.stage === stage && w.live).length;
      const dl = el("dl", { class: "metrics" },
        ...metric("throughput", "per min", count(throughput[stage])),
        ...metric("lag", "lag", group ? count(group.lag) : "—"),
        ...metric("pending", "pending", group ? count(group.pending) : "—"),
        ...metric("workers", "workers", count(group && isNum(group.workers) ? group.workers : live)));
      if (group && isNum(group.oldest_pending_age_s)) {
        dl.append(...metric("oldest", "oldest pending", `${fixed(group.oldest_pending_age_s)} s`));
      }
      return el("li", { class: `stage${group ? "" : " stage-missing"}`, "data-stage": stage },
        el("h3", {}, stage, el("span", { class: "stream-name", text: stream ? ` ← ${stream.name}` : " (no group yet)" })),
        dl);
    });
    $("stages").replaceChildren(...cards);
    const results = streams.find((s) => (s.name || "").endsWith(":results"));
    $("totals").replaceChildren(
      ...metric("inflight", "in flight", count(status.inflight)),
      ...metric("dead_letters", "dead letters", count(status.dead_letters)),
      ...metric("results", "results", results ? count(results.length) : "—"),
      ...metric("results_rate", "results per min", count(status.results_per_min)),
      ...(isNum(status.redis_memory_bytes) ? metric("memory", "Redis memory", `${fixed(status.redis_memory_bytes / 1048576)} MiB`) : []));
    $("stages-updated").textContent = `Updated ${new Date().toLocaleTimeString("en-GB")}, every ${STATUS_EVERY_MS / 1000} s.`;
  }

  // ---- read-only (`faces browse`) ---------------------------------------------------------

  let readOnly = false;

  /** `faces browse` serves finished results from a folder, without the pipeline: no uploads,
   * no stages. */
  function renderReadOnly(status) {
    readOnly = true;
    $("upload-card").hidden = true;
    $("stages-title").textContent = "Results folder";
    const dead = $("gallery-status").querySelector('option[value="dead_lettered"]');
    if (dead) dead.remove();  // no dead letters without Redis
    $("stages-legend").hidden = true;
    $("stages").replaceChildren();
    $("totals").replaceChildren(...metric("stored", "results", count(status.results)));
    $("stages-updated").textContent = `No pipeline: this is \`faces browse\`, showing the results in ${status.storage} (read-only). \`faces up --serve\` analyses photos.`;
    // No people without Redis.
    $("views").hidden = true;
    if (currentView === "people-view" || currentView === "person-view") location.hash = "#/";
  }

  async function refreshStatus() {
    try {
      const response = await api("/v1/status");
      if (response.ok) renderStatus(await response.json());
      else $("stages-updated").textContent = `Status unavailable: ${await errorText(response)}`;
    } catch (error) {
      $("stages-updated").textContent = `Status unavailable: could not reach the server (${error.message}).`;
    }
  }

  // ---- routing and timers ---------------------------------------------------------------

  const VIEWS = ["home-view", "result-view", "people-view", "person-view"];
  let currentView = "home-view";

  function route() {
    const result = location.hash.match(/^#\/results\/(.+)$/);
    const person = location.hash.match(/^#\/people\/(.+)$/);
    const people = location.hash === "#/people";
    currentView = result ? "result-view" : person ? "person-view" : people ? "people-view" : "home-view";
    for (const view of VIEWS) $(view).hidden = view !== currentView;
    const onPeople = Boolean(person || people);
    for (const [link, on] of [["nav-people", onPeople], ["nav-results", !onPeople]]) {
      if (on) $(link).setAttribute("aria-current", "page");
      else $(link).removeAttribute("aria-current");
    }
    if (!result) shownResultId = null;
    if (!person) shownPersonId = null;
    if (result) showResult(decodeURIComponent(result[1]));
    else if (person) showPerson(decodeURIComponent(person[1]));
    else if (people) loadPeople();
    else loadGallery();
  }

  function refreshEverything() {
    refreshStatus();
    route();
  }

  function every(ms, work) {
    const tick = async () => {
      if (!document.hidden) {
        try { await work(); } catch (_) { /* shown in the page by `work` */ }
      }
      setTimeout(tick, ms);
    };
    setTimeout(tick, ms);
  }

  function start() {
    setUpToken();
    setUpUploads();
    setUpPeople();
    $("gallery-refresh").addEventListener("click", () => loadGallery());
    $("gallery-more").addEventListener("click", () => loadGallery(true));
    $("gallery-status").addEventListener("change", () => loadGallery());
    let searching = null;
    $("gallery-search").addEventListener("input", () => {
      clearTimeout(searching);
      searching = setTimeout(() => loadGallery(), SEARCH_DELAY_MS);
    });
    $("gallery-filter").addEventListener("submit", (event) => {
      event.preventDefault();
      clearTimeout(searching);
      loadGallery();
    });
    window.addEventListener("hashchange", route);
    refreshEverything();
    every(STATUS_EVERY_MS, refreshStatus);
    // Refreshes the first page only: not while older pages are shown, nor on another view.
    every(GALLERY_EVERY_MS, () => (currentView === "home-view" && $("gallery").children.length <= GALLERY_LIMIT ? loadGallery() : null));
  }

  start();
})();
