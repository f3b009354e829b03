// The PDF preview frame (templates/postdesk/pdf_preview.html), run by PDF.js in a frame
// sandboxed without allow-same-origin: an opaque origin that cannot reach the app.
// The bytes come from a signed, short-lived URL (no cookie is sent from here).
const MAX_PAGES = 20; // a preview, not a reader: the rest is one download away
const body = document.body;
const status = body.querySelector(".status");
const pages = body.querySelector(".pages");

function say(text) {
  status.textContent = text;
}

async function renderPage(doc, number, width) {
  const page = await doc.getPage(number);
  const scale = width / page.getViewport({ scale: 1 }).width;
  const ratio = window.devicePixelRatio || 1;
  const viewport = page.getViewport({ scale: scale * ratio });
  const canvas = document.createElement("canvas");
  canvas.width = Math.floor(viewport.width);
  canvas.height = Math.floor(viewport.height);
  canvas.className = "page";
  canvas.setAttribute("aria-label", `Page ${number}`);
  pages.append(canvas);
  await page.render({ canvas, canvasContext: canvas.getContext("2d"), viewport }).promise;
}

async function preview() {
  const pdfjs = await import(body.dataset.library);
  pdfjs.GlobalWorkerOptions.workerSrc = body.dataset.worker;
  const response = await fetch(body.dataset.src, { credentials: "omit", referrerPolicy: "no-referrer" });
  if (!response.ok) throw new Error(`the file could not be fetched (${response.status})`);
  const data = new Uint8Array(await response.arrayBuffer());
  // No eval, no XFA forms, no scripting: a PDF's own JavaScript never runs (nor could it here).
  const doc = await pdfjs.getDocument({ data, isEvalSupported: false, enableXfa: false }).promise;
  const width = Math.max(200, pages.clientWidth || document.documentElement.clientWidth - 16);
  const shown = Math.min(doc.numPages, MAX_PAGES);
  for (let n = 1; n <= shown; n += 1) await renderPage(doc, n, width);
  say(doc.numPages > shown ? `First ${shown} of ${doc.numPages} pages: download the file for the rest.`
    : `${doc.numPages} page${doc.numPages === 1 ? "" : "s"}`);
  body.classList.add("rendered");
}

preview().catch((error) => {
  say(`No preview: ${error && error.message ? error.message : error}. Download the file instead.`);
  body.classList.add("failed");
});
