/* Aidline console: the map (Leaflet), the new-need form (Alpine, CSP build) and small htmx glue.
   No inline script anywhere: the Content-Security-Policy allows scripts from this origin only. */
(function () {
  'use strict';

  var PRIORITY_RANK = { critical: 3, high: 2, normal: 1, low: 0 };

  function text(value) {
    var el = document.createElement('span');
    el.textContent = value;
    return el;
  }

  function openPanel(template, needId) {
    var url = template.replace('NEED_ID', encodeURIComponent(needId));
    if (window.htmx && document.getElementById('panel')) {
      window.htmx.ajax('GET', url, { target: '#panel', swap: 'innerHTML show:#panel:top' });
    } else {
      window.location.assign(url);
    }
  }

  function baseLayer(map, el) {
    var tiles = el.getAttribute('data-tiles');
    if (tiles) {
      window.L.tileLayer(tiles, { maxZoom: 19 }).addTo(map);
    }
  }

  function needMarker(feature, latlng, panel) {
    var p = feature.properties;
    var inner = document.createElement('span');
    inner.className = 'need-dot prio-' + p.priority + ' status-' + p.status;
    inner.setAttribute('data-testid', 'need-marker');
    inner.setAttribute('data-need-id', p.id);
    inner.setAttribute('role', 'button');
    inner.setAttribute('aria-label', p.kind + ' · ' + p.status_name);
    var marker = window.L.marker(latlng, {
      icon: window.L.divIcon({ className: 'need-icon', html: inner, iconSize: [18, 18], iconAnchor: [9, 9] }),
      keyboard: true,
      riseOnHover: true,
      zIndexOffset: (PRIORITY_RANK[p.priority] || 0) * 1000  // the most urgent on top where needs overlap
    });
    marker.bindTooltip(text(p.kind + ' · ' + p.status_name));
    marker.on('click', function () { openPanel(panel, p.id); });
    return marker;
  }

  function volunteerMarker(feature, latlng) {
    var p = feature.properties;
    var marker = window.L.circleMarker(latlng, {
      radius: 5 + 2 * p.load,
      className: 'volunteer-dot' + (p.load >= p.capacity ? ' full' : '')
    });
    marker.bindTooltip(text(p.name + ' · ' + p.load + '/' + p.capacity));
    return marker;
  }

  function drawMap(map, layers, data, panel, fit) {
    layers.clearLayers();
    var L = window.L;
    var shapes = L.geoJSON(data, {
      filter: function (f) { return f.properties.layer === 'grid' || f.properties.layer === 'incident'; },
      style: function (f) { return { className: f.properties.layer + '-area' }; },
      onEachFeature: function (f, layer) {
        var p = f.properties;
        layer.bindTooltip(text(p.layer === 'grid' ? p.id : p.family + ' · ' + p.needs));
      }
    });
    var points = L.geoJSON(data, {
      filter: function (f) { return f.properties.layer === 'need' || f.properties.layer === 'volunteer'; },
      pointToLayer: function (f, latlng) {
        return f.properties.layer === 'need' ? needMarker(f, latlng, panel) : volunteerMarker(f, latlng);
      }
    });
    layers.addLayer(shapes);
    layers.addLayer(points);
    if (fit) {
      var bounds = points.getBounds();
      if (shapes.getBounds().isValid()) { bounds.extend(shapes.getBounds()); }
      if (bounds.isValid()) { map.fitBounds(bounds.pad(0.15), { maxZoom: 15 }); } else { map.setView([30, 110], 4); }
    }
  }

  function load(source) {
    return window.fetch(source, { credentials: 'same-origin', headers: { Accept: 'application/geo+json' } })
      .then(function (r) { return r.ok ? r.json() : null; });
  }

  function initMap(el) {
    var map = window.L.map(el, { zoomControl: true, attributionControl: false });
    baseLayer(map, el);
    var layers = window.L.layerGroup().addTo(map);
    var source = el.getAttribute('data-source');
    var panel = el.getAttribute('data-panel');
    var first = true;
    function refresh() {
      load(source).then(function (data) {
        if (data) { drawMap(map, layers, data, panel, first); first = false; el.setAttribute('data-loaded', 'true'); }
      }).catch(function () { /* a poor network: the next refresh tries again */ });
    }
    refresh();
    window.setInterval(refresh, 10000);
  }

  function initPickMap(el) {
    if (el.getAttribute('data-ready')) { return; }
    el.setAttribute('data-ready', 'true');
    var map = window.L.map(el, { zoomControl: true, attributionControl: false });
    baseLayer(map, el);
    var lat = document.getElementById('lat');
    var lon = document.getElementById('lon');
    var marker = null;
    function place(latlng) {
      if (marker) { marker.setLatLng(latlng); } else { marker = window.L.circleMarker(latlng, { radius: 8, className: 'picked' }).addTo(map); }
    }
    var start = lat && lon && lat.value && lon.value ? [parseFloat(lat.value), parseFloat(lon.value)] : null;
    if (start && Math.abs(start[0]) <= 85 && Math.abs(start[1]) <= 180) { map.setView(start, 13); place(start); }
    else {
      map.setView([30, 110], 4);
      load(el.getAttribute('data-source')).then(function (data) {
        if (!data || start) { return; }
        var all = window.L.geoJSON(data);
        if (all.getBounds().isValid()) { map.fitBounds(all.getBounds().pad(0.15), { maxZoom: 14 }); }
      }).catch(function () {});
    }
    map.on('click', function (e) {
      lat.value = e.latlng.lat.toFixed(6);
      lon.value = e.latlng.lng.toFixed(6);
      place(e.latlng);
    });
  }

  document.addEventListener('alpine:init', function () {
    window.Alpine.data('needForm', function () {
      return {
        init: function () {
          var boxes = this.$root.querySelectorAll('input[name=skills]');
          var any = false;
          boxes.forEach(function (box) { any = any || box.checked; });
          if (!any) { this.applyKind(); }
        },
        applyKind: function () {
          var table = JSON.parse(document.getElementById('kind-skills').textContent);
          var kind = this.$root.querySelector('select[name=kind]').value;
          var wanted = table[kind] || [];
          this.$root.querySelectorAll('input[name=skills]').forEach(function (box) {
            box.checked = wanted.indexOf(box.value) >= 0;
          });
        },
        kindChanged: function () { this.applyKind(); }
      };
    });
  });

  document.addEventListener('htmx:afterSettle', function () {
    var pick = document.getElementById('pick-map');
    if (pick && window.L) { initPickMap(pick); }
  });

  document.addEventListener('DOMContentLoaded', function () {
    if (!window.L) { return; }
    var map = document.getElementById('map');
    if (map) { initMap(map); }
    var pick = document.getElementById('pick-map');
    if (pick) { initPickMap(pick); }
  });
})();
