// The console's stylesheet and script, embedded: nothing is built by a Node toolchain and nothing
// is fetched from the internet when a page loads.

enum ConsoleAssets {
    /// Colours meet WCAG AA contrast on their backgrounds (text ≥ 4.5:1); deployments' tiles
    /// differ in hue and carry their GPU index, so colour is never the only cue.
    static let css = """
    :root { --fg: #16202b; --muted: #4a5866; --bg: #f7f8fa; --card: #ffffff; --line: #d5dbe1; --accent: #0b5cad;
            --ok: #11703a; --warn: #8a5300; --bad: #b3261e; font-family: system-ui, -apple-system, "Segoe UI", sans-serif; }
    * { box-sizing: border-box; }
    body { margin: 0; color: var(--fg); background: var(--bg); font-size: 15px; line-height: 1.45; }
    a { color: var(--accent); }
    a:focus-visible, button:focus-visible, input:focus-visible, summary:focus-visible, select:focus-visible { outline: 3px solid #f0a500; outline-offset: 2px; }
    header { background: #14263b; color: #fff; padding: .5rem 1rem; display: flex; flex-wrap: wrap; gap: .25rem 1.5rem; align-items: center; }
    header .brand { font-weight: 700; letter-spacing: .02em; }
    header nav { display: flex; flex-wrap: wrap; gap: .25rem; }
    header nav a { color: #fff; text-decoration: none; padding: .35rem .6rem; border-radius: 4px; }
    header nav a[aria-current=page] { background: #2d4a6b; }
    header .live { margin-left: auto; font-size: .85rem; color: #d9e4ef; }
    main { padding: 1rem; max-width: 1400px; margin: 0 auto; }
    h1 { font-size: 1.35rem; margin: .25rem 0 1rem; }
    h2 { font-size: 1.1rem; margin: 1.5rem 0 .5rem; }
    .card { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: .75rem 1rem; margin-bottom: .75rem; }
    .flash { border-left: 4px solid var(--ok); }
    .error { border-left: 4px solid var(--bad); }
    .muted { color: var(--muted); }
    .ok { color: var(--ok); } .warn { color: var(--warn); } .bad { color: var(--bad); }
    .badge { display: inline-block; padding: 0 .45rem; border-radius: 9px; font-size: .8rem; border: 1px solid currentColor; margin-right: .25rem; }
    .scroll { overflow-x: auto; }
    table { border-collapse: collapse; width: 100%; background: var(--card); }
    th, td { text-align: left; padding: .4rem .6rem; border-bottom: 1px solid var(--line); vertical-align: top; }
    th { font-size: .85rem; color: var(--muted); font-weight: 600; }
    /* A thousand rows: the browser lays out and paints only those near the screen. */
    .node { display: grid; grid-template-columns: minmax(9rem, 14rem) 1fr minmax(8rem, 12rem); gap: .5rem 1rem; align-items: center;
            padding: .5rem .25rem; border-bottom: 1px solid var(--line); content-visibility: auto; contain-intrinsic-size: auto 5.5rem; }
    .node .name { font-weight: 600; }
    .node .msg { font-size: .8rem; overflow-wrap: anywhere; max-height: 4.2em; overflow: hidden; }
    .tiles { display: flex; flex-wrap: wrap; gap: 3px; }
    .tile { width: 2rem; height: 2rem; border-radius: 3px; display: flex; align-items: center; justify-content: center;
            font-size: .75rem; font-weight: 600; border: 1px solid rgba(0,0,0,.25); color: #fff; }
    .tile.free { background: #e9edf1; color: #3d4a57; }
    .tile.oos { background: repeating-linear-gradient(45deg, #fff 0 4px, #b3261e 4px 7px); color: #16202b; }
    .tile.standby { background: #fff; color: #3d4a57; border-style: dashed; }
    .d0 { background: #0b5cad; } .d1 { background: #8a3ffc; } .d2 { background: #11703a; } .d3 { background: #a2191f; }
    .d4 { background: #7a5200; } .d5 { background: #005d5d; } .d6 { background: #9f1853; } .d7 { background: #3d4a57; }
    .legend { display: flex; flex-wrap: wrap; gap: .75rem; margin: .5rem 0 1rem; font-size: .9rem; }
    .legend span.sw { display: inline-block; width: 1rem; height: 1rem; border-radius: 2px; vertical-align: -2px; margin-right: .3rem; }
    .bar { display: flex; height: 1.4rem; border-radius: 4px; overflow: hidden; border: 1px solid var(--line); min-width: 8rem; }
    .bar span { display: flex; align-items: center; justify-content: center; color: #fff; font-size: .75rem; white-space: nowrap; overflow: hidden; }
    progress { width: 8rem; height: .9rem; vertical-align: middle; }
    pre.diff { background: #0f1720; color: #e6edf3; padding: .75rem; border-radius: 6px; overflow-x: auto; font-size: .85rem; }
    form.inline { display: inline; }
    details.actions summary { cursor: pointer; color: var(--accent); }
    details.actions form { margin: .5rem 0; display: flex; flex-wrap: wrap; gap: .4rem; align-items: center; }
    input, select, button { font: inherit; padding: .3rem .5rem; border: 1px solid #8494a3; border-radius: 4px; background: #fff; color: var(--fg); }
    button { background: var(--accent); color: #fff; border-color: var(--accent); cursor: pointer; }
    button.danger { background: var(--bad); border-color: var(--bad); }
    ol.timeline { list-style: none; padding: 0; margin: 0; display: flex; flex-wrap: wrap; gap: .35rem; }
    ol.timeline li { padding: .15rem .5rem; border-radius: 4px; background: #e9edf1; font-size: .85rem; }
    ol.timeline li.done { background: #dff3e6; color: #0c4f29; }
    ul.events { list-style: none; padding: 0; margin: 0; }
    ul.events li { padding: .35rem 0; border-bottom: 1px solid var(--line); }
    pre.diff .add { color: #7ee787; } pre.diff .del { color: #ffa198; } pre.diff .hunk { color: #a5d6ff; }
    @media (max-width: 700px) {
      .node { grid-template-columns: 1fr; }
      table.stack thead { position: absolute; left: -10000px; }
      table.stack tr { display: block; border-bottom: 2px solid var(--line); padding: .25rem 0; }
      table.stack td, table.stack th { display: block; border: 0; padding: .15rem .4rem; }
      table.stack td[data-label]::before { content: attr(data-label) ": "; color: var(--muted); font-size: .85rem; }
      main { padding: .5rem; }
      th, td { padding: .3rem .4rem; }
      .hide-narrow { display: none; }
    }
    """

    /// Follows the server's event stream: new events are added to the page's list, and the
    /// deployments' counts and progress are replaced as the controller reports them.
    static let js = """
    (function () {
      var live = document.getElementById('live');
      if (!window.EventSource) { if (live) live.textContent = 'live updates need a newer browser'; return; }
      // From the newest event the page shows, so none stored meanwhile is missed.
      var list = document.getElementById('events');
      var source = new EventSource('/events/stream' + (list ? '?after=' + encodeURIComponent(list.getAttribute('data-last') || '0') : ''));
      source.onopen = function () { if (live) live.textContent = 'live'; };
      source.onerror = function () { if (live) live.textContent = 'reconnecting…'; };
      source.addEventListener('event', function (m) {
        if (!list) return;
        var e = JSON.parse(m.data);
        var li = document.createElement('li');
        li.setAttribute('data-event', e.id);
        var time = document.createElement('time'); time.textContent = e.time; li.appendChild(time);
        li.appendChild(document.createTextNode(' ' + e.reason + ' ' + (e.object || '') + ': ' + e.message));
        list.insertBefore(li, list.firstChild);
      });
      source.addEventListener('deployments', function (m) {
        JSON.parse(m.data).forEach(function (d) {
          var row = document.querySelector('[data-deployment="' + CSS.escape(d.name) + '"]');
          if (!row) return;
          var set = function (field, text) { var el = row.querySelector('[data-field=' + field + ']'); if (el) el.textContent = text; };
          set('ready', d.ready + '/' + d.desired);
          set('version', d.version);
          set('rollout', d.rollout);
          var bar = row.querySelector('progress');
          if (bar) { bar.max = d.desired || 1; bar.value = d.updatedReady; }
        });
      });
    })();
    """
}
