/* Part of the plotly.js partial bundle (app/browser_scripts.py, BUNDLE_BUILD): required
   first by the bundle's entry, so that the image trace's calc module takes this
   getImageSize when it loads.

   plotly.js sizes an image trace's data URI by decoding the whole base64 string in
   JavaScript (a Buffer polyfill) on every draw — for the Classes page's 1,000 × 1,000
   heatmap (1.1 MB) about 40 % of its redraw. The size is in the image's first bytes (a
   PNG's header is 33 bytes), so decode HEAD characters only and fall back to plotly.js's
   own for an image they cannot size (a JPEG whose size comes late). */
var imageHelpers = require('plotly.js/src/traces/image/helpers');
var probeSync = require('probe-image-size/sync');
var Buffer = require('buffer/').Buffer;

var HEAD = 4096;  // base64 characters: 3,072 bytes
var wholeImageSize = imageHelpers.getImageSize;

imageHelpers.getImageSize = function (src) {
  var start = src.indexOf(',') + 1;
  try {
    var size = probeSync(new Buffer(src.slice(start, start + HEAD), 'base64'));
    if (size && size.width && size.height) { return size; }
  } catch (e) { /* too few bytes for this format: size it from all of them */ }
  return wholeImageSize(src);
};
