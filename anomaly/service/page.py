"""The service's web page (``GET /``): choose a recording or beats CSV and a model, and
see the file's report, the one ``anomaly score --html`` writes (summary, what could be
analysed, the score over time, ECG strips of the most anomalous beats), made by
``POST /v2/models/{model}/report``. The file goes to this service only; the page needs
no other site."""

from __future__ import annotations

import html

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>anomaly: score an ECG</title>
<style>
body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #222; }
form { display: flex; flex-wrap: wrap; gap: 0.8rem 1.5rem; align-items: end;
       padding: 1rem; background: #f5f7fa; border: 1px solid #d8dee6; border-radius: 6px; }
label { display: flex; flex-direction: column; font-size: 0.85rem; color: #444; gap: 0.25rem; }
input, select, button { font-size: 1rem; padding: 0.3rem 0.5rem; }
button { background: #1f5fa8; color: white; border: none; border-radius: 4px;
         padding: 0.45rem 1.2rem; cursor: pointer; }
button:disabled { background: #8aa6c8; }
#status { margin: 1rem 0; min-height: 1.4rem; }
#status.error { color: #b00020; font-weight: 600; }
iframe { width: 100%; height: 80vh; border: 1px solid #d8dee6; border-radius: 6px; }
.hint { font-size: 0.8rem; color: #666; }
</style></head><body>
<h1>Score an ECG for abnormal beats</h1>
<p class="hint">A recording (EDF, a WFDB record's .hea and .dat files chosen together, or a
CSV of samples per lead) or a beats CSV, scored by the model you choose. The files are
sent to this service only.</p>
<form id="form">
  <label>Recording or beats file <input type="file" id="file" multiple required></label>
  <label>Kind of file <select id="format">
    <option value="edf">EDF recording</option>
    <option value="wfdb">WFDB record (its .hea and .dat files)</option>
    <option value="signal-csv">CSV of samples per lead</option>
    <option value="beats-csv">Beats CSV (one beat per row)</option></select></label>
  <label>Sampling rate, Hz <input id="fs" size="6" placeholder="from the file"></label>
  <label>From <input id="from" size="7" placeholder="start"></label>
  <label>To <input id="to" size="7" placeholder="end"></label>
  <label>Model <select id="model">__MODELS__</select></label>
  __TOKEN__
  <button id="go" type="submit">Score</button>
</form>
<div id="status" role="status"></div>
<iframe id="report" title="report" sandbox="" hidden></iframe>
<script>
const form = document.getElementById("form"), status = document.getElementById("status");
const file = document.getElementById("file"), format = document.getElementById("format");
file.addEventListener("change", () => {
  const names = Array.from(file.files, (chosen) => chosen.name.toLowerCase());
  if (names.some((name) => name.endsWith(".hea"))) format.value = "wfdb";
  else if (names.some((name) => name.endsWith(".edf"))) format.value = "edf";
});
form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const files = Array.from(file.files);
  if (!files.length) return;
  const header = files.find((one) => one.name.toLowerCase().endsWith(".hea"));
  const chosen = format.value === "wfdb" && header ? header : files[0];
  const query = new URLSearchParams({format: format.value, name: chosen.name});
  let body = chosen;
  if (format.value === "wfdb") {  // A record is several files: one part each.
    body = new FormData();
    files.forEach((one) => body.append("file", one, one.name));
  }
  if (format.value !== "beats-csv") {  // A recording's rate and span, as --fs, --from, --to.
    for (const name of ["fs", "from", "to"]) {
      const value = document.getElementById(name).value.trim();
      if (value) query.set(name, value);
    }
  }
  const headers = {};
  const token = document.getElementById("token");
  if (token && token.value) headers["Authorization"] = "Bearer " + token.value.trim();
  const model = document.getElementById("model").value;
  document.getElementById("go").disabled = true;
  status.className = ""; status.textContent = "Scoring " + chosen.name + "\\u2026";
  try {
    const answer = await fetch("v2/models/" + encodeURIComponent(model) + "/report?" + query,
                               {method: "POST", body: body, headers: headers});
    if (!answer.ok) {
      let message = answer.status + " " + answer.statusText;
      try { message = (await answer.json()).error; } catch (e) {}
      throw new Error(message);
    }
    const report = document.getElementById("report");
    const text = await answer.text();
    // Said scored once the report is shown, not while the frame still shows the last one.
    await new Promise(resolve => {
      report.addEventListener("load", resolve, {once: true});
      report.srcdoc = text;
    });
    report.hidden = false;
    status.textContent = chosen.name + ", scored by model " + model + ".";
  } catch (error) {
    status.className = "error"; status.textContent = "Not scored: " + error.message;
  } finally {
    document.getElementById("go").disabled = false;
  }
});
</script></body></html>
"""


def web_page(models: list[str], *, token: bool) -> str:
    """The page, listing ``models``; with ``token``, a field for the bearer token (kept in
    the page, sent with each file)."""
    options = "".join(f"<option>{html.escape(name)}</option>" for name in models)
    field = ('<label>Access token <input type="password" id="token" autocomplete="off">'
             "</label>" if token else "")
    return _PAGE.replace("__MODELS__", options).replace("__TOKEN__", field)
