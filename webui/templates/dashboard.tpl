% rebase('base.tpl', title=both('web.title')[0], lang=lang)
<header>
  <h1><span id="box-name">{{!bi('web.title')}}</span> <span id="box-number" class="number"></span></h1>
  <span id="link" class="link down">{{!bi('web.offline')}}</span>
  <span class="user">{{user}}</span>
  <form method="post" action="logout"><button type="submit">{{!bi('web.logout')}}</button></form>
</header>
<p id="core-error" class="error" role="alert" hidden></p>
<ul id="alarms" class="alarms" role="alert" hidden></ul>
<main class="dashboard">
  <section id="trunks">
    <h2>{{!bi('web.trunks')}}</h2>
    <div id="trunk-grid" class="grid"></div>
    <ul class="legend">
    % for s in trunk_states:
      <li><span class="cell {{s}}"></span>{{!bi('web.state.' + s)}}</li>
    % end
    </ul>
  </section>
  <section id="seats">
    <h2>{{!bi('web.seats')}}</h2>
    <table>
      <thead><tr><th>{{!bi('web.col.seat')}}</th><th>{{!bi('web.col.extension')}}</th><th>{{!bi('web.col.state')}}</th><th>{{!bi('web.col.caller')}}</th><th>{{!bi('web.col.since')}}</th></tr></thead>
      <tbody id="seat-rows"></tbody>
    </table>
  </section>
  <section id="queue">
    <h2>{{!bi('web.queue')}} <span id="queue-length" class="count"></span></h2>
    <table>
      <thead><tr><th>{{!bi('web.col.position')}}</th><th>{{!bi('web.col.caller')}}</th><th>{{!bi('web.col.waiting')}}</th></tr></thead>
      <tbody id="queue-rows"></tbody>
    </table>
    <p id="queue-empty" class="muted">{{!bi('web.queue.empty')}}</p>
  </section>
  <section id="today">
    <h2>{{!bi('web.today')}}</h2>
    <dl>
    % for k in ('offered', 'answered', 'abandoned', 'in_progress'):
      <div><dt>{{!bi('web.today.' + k)}}</dt><dd id="today-{{k}}">-</dd></div>
    % end
    </dl>
  </section>
</main>
<script id="i18n" type="application/json">{{!i18n}}</script>
<script src="static/dashboard.js"></script>
