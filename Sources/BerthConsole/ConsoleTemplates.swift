import Mustache

// The console's pages as Mustache templates, compiled once into a library. `{{x}}` escapes HTML;
// the only unescaped value is the layout's `{{{body}}}`, itself a rendered template.

enum ConsoleTemplates {
    static let library: MustacheLibrary = {
        var library = MustacheLibrary()
        for (name, text) in all {
            // The templates are constants of this file: one that does not compile is a bug here.
            do { library.register(try MustacheTemplate(string: text), named: name) } catch {
                preconditionFailure("console template \(name): \(error)")
            }
        }
        return library
    }()

    static let all: [(String, String)] = [
        ("layout", layout), ("fleet", fleet), ("noderow", noderow), ("node", node), ("deployments", deployments), ("history", history), ("diff", diff),
        ("at", at), ("rollback", rollback), ("events", events), ("login", login), ("message", message),
    ]

    static let layout = """
    <!doctype html>
    <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
    <title>{{title}} · Berth</title><link rel="stylesheet" href="/assets/console.css"></head>
    <body>
    <header><span class="brand">Berth</span>
    <nav aria-label="Console">{{#nav}}<a href="{{href}}"{{#current}} aria-current="page"{{/current}}>{{label}}</a>{{/nav}}</nav>
    <span class="live"><span id="leadership">{{leadership}}</span> · <span id="live" role="status">{{#live}}connecting…{{/live}}{{^live}}static{{/live}}</span></span></header>
    <main id="main">
    {{#flash}}<div class="card flash" role="status">{{flash}}</div>{{/flash}}
    {{#error}}<div class="card error" role="alert">{{error}}</div>{{/error}}
    {{{body}}}
    </main>
    {{#live}}<script src="/assets/console.js"></script>{{/live}}
    </body></html>
    """

    static let fleet = """
    <h1>Fleet</h1>
    <p class="muted" id="fleet-summary">{{summary}}</p>
    <div class="legend" aria-label="Deployments by colour">{{#legend}}<span><span class="sw {{cls}}"></span>{{name}}</span>{{/legend}}
    {{#legendMore}}<span class="muted">{{legendMore}}</span>{{/legendMore}}
    <span><span class="sw tile free"></span>free</span><span><span class="sw tile oos"></span>out of service</span><span><span class="sw tile standby"></span>standby</span></div>
    <section class="card" aria-label="Nodes">
    {{#nodes}}{{> noderow}}
    {{/nodes}}{{^nodes}}<p>No node has reported yet: the controller fills this page after its first pass as leader.</p>{{/nodes}}
    </section>
    """

    /// One node: kept small, since the fleet page draws a thousand of them; its actions are on its own page.
    static let noderow = """
    <div class="node" id="node-{{name}}" data-node="{{name}}">
    <div><a class="name" href="/nodes/{{name}}">{{name}}</a><div><span class="badge">{{role}}</span> <span class="{{stateClass}}" data-field="state">{{stateText}}</span></div>
    {{#detail}}<div class="msg muted">{{detail}}</div>{{/detail}}{{#hold}}<div class="warn">{{hold}}</div>{{/hold}}<div class="muted">heartbeat {{heartbeat}}</div></div>
    <div class="tiles" role="img" aria-label="{{gpuSummary}}">{{#gpus}}<span class="tile {{cls}}" title="{{title}}">{{index}}</span>{{/gpus}}</div>
    <div>{{#telemetry}}<div>GPU {{utilisation}}</div><div class="muted">memory {{memory}}</div>{{/telemetry}}{{^telemetry}}<span class="muted">no telemetry yet</span>{{/telemetry}}</div></div>
    """

    static let node = """
    <h1>Node {{name}}</h1>
    {{#node}}<section class="card">{{> noderow}}</section>
    <form class="card" method="post" action="/nodes/{{name}}" id="node-actions" aria-label="Actions on {{name}}">
    <label>Who <input name="author" value="{{author}}" required maxlength="64" size="12"></label>
    <label>Why <input name="reason" maxlength="200" size="24"></label>
    {{#actions}}<button name="action" value="{{value}}"{{#danger}} class="danger"{{/danger}}>{{label}}</button> {{/actions}}</form>{{/node}}
    <h2>Events</h2>
    <ul class="events">{{#events}}<li data-event="{{id}}"><time>{{time}}</time> {{reason}}: {{message}}</li>{{/events}}</ul>
    <p><a href="/">Back to the fleet</a></p>
    """

    static let deployments = """
    <h1>Deployments</h1>
    <div class="scroll"><table class="stack" aria-label="Deployments"><thead><tr><th>Name</th><th>Version</th><th>Ready</th><th>Rollout</th><th>Conditions</th></tr></thead><tbody>
    {{#deployments}}<tr data-deployment="{{name}}"><th scope="row">{{name}}</th><td data-label="Version" data-field="version">{{version}}</td><td data-label="Ready" data-field="ready">{{ready}}/{{desired}}</td>
    <td data-label="Rollout"><progress max="{{progressMax}}" value="{{updatedReady}}" aria-label="updated and ready: {{updatedReady}} of {{desired}}"></progress> <span data-field="rollout">{{rollout}}</span></td>
    <td data-label="Conditions">{{#conditions}}<div class="{{cls}}"><strong>{{type}}</strong> {{reason}}{{#message}}: {{message}}{{/message}}</div>{{/conditions}}</td></tr>
    {{/deployments}}{{^deployments}}<tr><td colspan="5">No deployment yet.</td></tr>{{/deployments}}
    </tbody></table></div>
    <h2>Gateways</h2>
    {{#gateways}}<div class="card" data-gateway="{{name}}"><strong>{{name}}</strong> <span class="muted">port {{listen}}</span>
    <div class="bar" role="img" aria-label="traffic split: {{splitText}}">{{#split}}<span class="{{cls}}" style="width: {{percent}}%">{{label}}</span>{{/split}}</div>
    <div class="muted">{{splitText}}</div></div>
    {{/gateways}}{{^gateways}}<p class="muted">No gateway.</p>{{/gateways}}
    """

    static let history = """
    <h1>History</h1>
    <form class="card" method="get" action="/history/diff" aria-label="Compare two revisions">Compare revision
    <input name="from" inputmode="numeric" size="5" required aria-label="from revision" value="{{previous}}"> with
    <input name="to" inputmode="numeric" size="5" required aria-label="to revision" value="{{latest}}"> <button>Diff</button></form>
    <form class="card" method="get" action="/history/at" aria-label="What ran at a time">What was desired at
    <input name="time" required placeholder="2026-12-06T09:00:00Z" size="22" aria-label="time, UTC"> <button>Show</button></form>
    <h2>Revisions</h2>
    <div class="scroll"><table class="stack" aria-label="Revisions"><thead><tr><th>#</th><th>When (UTC)</th><th>Who</th><th>Origin</th><th>Message</th><th>Changes</th><th></th></tr></thead><tbody>
    {{#revisions}}<tr data-revision="{{number}}"><td data-label="Revision">{{number}}</td><td data-label="When"><time datetime="{{iso}}">{{when}}</time></td><td data-label="Who">{{author}}</td><td data-label="Origin">{{origin}}</td><td data-label="Message">{{message}}</td>
    <td data-label="Changes">{{changes}}</td><td>{{#hasPrevious}}<a href="/history/diff?from={{previous}}&amp;to={{number}}">diff</a> · {{/hasPrevious}}<a href="/rollback?revision={{number}}">roll back to</a></td></tr>
    {{/revisions}}{{^revisions}}<tr><td colspan="7">No revision yet: `berth apply -f` stores the first.</td></tr>{{/revisions}}
    </tbody></table></div>
    <h2>Snapshots</h2>
    <div class="scroll"><table class="stack" aria-label="Snapshots"><thead><tr><th>Snapshot</th><th>Taken (UTC)</th><th>Revision</th><th></th></tr></thead><tbody>
    {{#snapshots}}<tr data-snapshot="{{id}}"><td data-label="Snapshot">{{id}}</td><td data-label="Taken">{{when}}</td><td data-label="Revision">{{revision}}</td><td><a href="/rollback?snapshot={{id}}">roll back to</a></td></tr>
    {{/snapshots}}{{^snapshots}}<tr><td colspan="4">{{snapshotsNote}}</td></tr>{{/snapshots}}
    </tbody></table></div>
    """

    static let diff = """
    <h1>{{heading}}</h1>
    {{#hasLines}}<pre class="diff" aria-label="diff">{{#lines}}<span class="{{cls}}">{{text}}</span>
    {{/lines}}</pre>{{/hasLines}}{{^hasLines}}<p>No difference.</p>{{/hasLines}}
    <p><a href="/history">Back to history</a></p>
    """

    static let at = """
    <h1>{{heading}}</h1>
    <div class="scroll"><table class="stack" aria-label="Objects"><thead><tr><th>Object</th><th>Summary</th></tr></thead><tbody>
    {{#objects}}<tr><td>{{key}}</td><td data-label="Spec">{{summary}}</td></tr>{{/objects}}
    </tbody></table></div>
    <p>{{#revision}}<a href="/rollback?revision={{revision}}">Roll back to this state</a> · {{/revision}}<a href="/history">Back to history</a></p>
    """

    static let rollback = """
    <h1>Roll back to {{label}}</h1>
    <p>A dry run: nothing is stored until you confirm. The rollback is stored as a new revision; history is kept.</p>
    <h2>Diff (now → {{label}})</h2>
    <pre class="diff" id="rollback-diff">{{#lines}}<span class="{{cls}}">{{text}}</span>
    {{/lines}}</pre>
    <h2>Checks</h2>
    {{#problems}}<div class="card error" data-problem>{{.}}</div>{{/problems}}{{^problems}}<p class="ok" id="checks-passed">The target passed every check: every replica fits, every artifact verified, every image is on a node or pullable.</p>{{/problems}}
    <form class="card" method="post" action="/rollback" id="confirm-rollback">
    {{#fields}}<input type="hidden" name="{{name}}" value="{{value}}">{{/fields}}
    <label>Who <input name="author" value="{{author}}" required maxlength="64"></label>
    <label>Why <input name="message" maxlength="200" size="30" placeholder="rollback to {{label}}"></label>
    {{#hasProblems}}<label><input type="checkbox" name="force" value="1"> store it although checks failed</label>{{/hasProblems}}
    <button class="danger" id="confirm">Confirm rollback</button> <a href="/history">Cancel</a></form>
    """

    static let events = """
    <h1>Events and failovers</h1>
    <h2>Promotions</h2>
    {{#promotions}}<div class="card" data-promotion="{{failedNode}}"><strong>{{failedNode}}</strong> → {{standby}} <span class="{{cls}}">{{state}}</span>
    <span class="muted">deadline {{deadline}} ({{budget}})</span>
    <ol class="timeline" aria-label="promotion of {{failedNode}}">{{#steps}}<li class="{{#done}}done{{/done}}">{{label}}{{#at}} {{at}}{{/at}}</li>{{/steps}}</ol>
    {{#reason}}<div class="muted">{{reason}}</div>{{/reason}}</div>
    {{/promotions}}{{^promotions}}<p class="muted">No promotion since this controller started leading.</p>{{/promotions}}
    <h2>Events</h2>
    <ul class="events" id="events" aria-live="polite" data-last="{{lastEvent}}">
    {{#events}}<li data-event="{{id}}"><time>{{time}}</time> {{reason}} {{object}}: {{message}}</li>{{/events}}
    </ul>
    """

    static let message = """
    <h1>{{heading}}</h1>
    <p><a href="/">Back to the fleet</a> · <a href="/history">History</a></p>
    """

    static let login = """
    <h1>Sign in</h1>
    <form class="card" method="post" action="/login">
    <p>This controller listens beyond loopback: its console needs the token from the controller's --token-file.</p>
    <input type="hidden" name="next" value="{{next}}">
    <label>Token <input type="password" name="token" required autocomplete="current-password" autofocus></label> <button>Sign in</button></form>
    """
}
