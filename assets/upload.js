// larder's upload page: each chosen or dropped file is posted with the
// signed form fields the page carries, with a progress bar per file.
(function () {
  "use strict";
  var box = document.getElementById("uploader");
  var fields = JSON.parse(box.getAttribute("data-fields"));
  var max = Number(box.getAttribute("data-max"));
  var type = box.getAttribute("data-type") || "";
  var input = document.getElementById("files");
  var list = document.getElementById("list");

  function human(bytes) {
    var units = ["bytes", "KiB", "MiB", "GiB"];
    var i = 0;
    while (bytes >= 1024 && i < units.length - 1) { bytes /= 1024; i += 1; }
    return (i ? bytes.toFixed(1) : bytes) + " " + units[i];
  }

  function reason(status, text) {
    if (/expired/i.test(text) || /InvalidAccessKeyId/.test(text)) { return "This link has expired."; }
    if (/used up/i.test(text)) { return "This link has been used up."; }
    if (/EntityTooLarge/.test(text)) { return "This file is too big."; }
    return "The upload was refused (" + status + ").";
  }

  function send(file) {
    var item = document.createElement("li");
    var name = document.createElement("span");
    name.className = "name";
    name.textContent = file.name;
    var bar = document.createElement("progress");
    bar.max = 100;
    bar.value = 0;
    var note = document.createElement("span");
    note.className = "note";
    item.appendChild(name);
    item.appendChild(bar);
    item.appendChild(note);
    list.appendChild(item);
    function fail(text) { note.textContent = text; item.className = "error"; }
    if (file.size > max) { return fail("Too big: the limit is " + human(max) + "."); }
    if (type && (file.type || "").indexOf(type) !== 0) { return fail("Wrong type: only " + type + "* files."); }
    var form = new FormData();
    Object.keys(fields).forEach(function (key) { form.append(key, fields[key]); });
    form.append("Content-Type", file.type || "application/octet-stream");
    form.append("file", file);
    var request = new XMLHttpRequest();
    request.open("POST", box.getAttribute("data-action"));
    request.upload.onprogress = function (event) {
      if (event.lengthComputable) { bar.value = Math.round(event.loaded * 100 / event.total); }
    };
    request.onload = function () {
      if (request.status >= 200 && request.status < 300) {
        bar.value = 100;
        note.textContent = "Done";
        item.className = "done";
      } else {
        fail(reason(request.status, request.responseText));
      }
    };
    request.onerror = function () { fail("The upload failed; check the connection."); };
    request.send(form);
  }

  input.addEventListener("change", function () {
    Array.prototype.forEach.call(input.files, send);
    input.value = "";
  });
  box.addEventListener("dragover", function (event) { event.preventDefault(); box.className = "over"; });
  box.addEventListener("dragleave", function () { box.className = ""; });
  box.addEventListener("drop", function (event) {
    event.preventDefault();
    box.className = "";
    Array.prototype.forEach.call(event.dataTransfer.files, send);
  });
})();
