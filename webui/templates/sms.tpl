% rebase('base.tpl', title=both('web.sms.title')[0] + ' - ' + both('web.title')[0], lang=lang)
<header>
  <h1>{{!bi('web.sms.title')}}</h1>
  <span id="link" class="link down">{{!bi('web.offline')}}</span>
  <span class="user">{{user}}</span>
  <form method="post" action="logout"><button type="submit">{{!bi('web.logout')}}</button></form>
</header>
<p id="sms-error" class="error" role="alert" hidden></p>
<main class="sms">
  <section id="transports">
    <h2>{{!bi('web.sms.transports')}}</h2>
    <ul id="transport-list" class="transports"></ul>
  </section>
  <section id="send">
    <h2>{{!bi('web.sms.send')}}</h2>
    <form id="send-form" class="stack">
      <label>{{!bi('web.sms.field.to')}} <input id="send-to" name="to" maxlength="32" required inputmode="tel"></label>
      <label>{{!bi('web.sms.field.text')}} <textarea id="send-text" name="text" maxlength="2000" rows="3" required></textarea></label>
      <p id="send-count" class="muted"></p>
      <button type="submit">{{!bi('web.sms.send.submit')}}</button> <span id="send-done" class="muted"></span>
    </form>
  </section>
  <section id="outbox" class="wide">
    <h2>{{!bi('web.sms.outbox')}}</h2>
    <table>
      <thead><tr><th>{{!bi('web.sms.col.time')}}</th><th>{{!bi('web.sms.col.number')}}</th><th>{{!bi('web.sms.col.text')}}</th>
        <th>{{!bi('web.sms.col.via')}}</th><th>{{!bi('web.sms.col.state')}}</th><th>{{!bi('web.sms.col.reason')}}</th><th></th></tr></thead>
      <tbody id="outbox-rows"></tbody>
    </table>
  </section>
  <section id="inbound">
    <h2>{{!bi('web.sms.inbound')}}</h2>
    <table>
      <thead><tr><th>{{!bi('web.sms.col.time')}}</th><th>{{!bi('web.sms.col.number')}}</th><th>{{!bi('web.sms.col.text')}}</th></tr></thead>
      <tbody id="inbound-rows"></tbody>
    </table>
  </section>
  <section id="templates">
    <h2>{{!bi('web.sms.templates')}}</h2>
    <table>
      <thead><tr><th>{{!bi('web.sms.field.name')}}</th><th>{{!bi('web.sms.col.text')}}</th><th>{{!bi('web.sms.col.parts')}}</th><th></th></tr></thead>
      <tbody id="template-rows"></tbody>
    </table>
    <form id="template-form" class="stack">
      <label>{{!bi('web.sms.field.name')}} <input id="template-name" name="name" maxlength="64" required></label>
      <label>{{!bi('web.sms.field.text')}} <textarea id="template-text" name="text" maxlength="2000" rows="3" required></textarea></label>
      <p class="muted">{{!bi('web.sms.template.help')}}
      % for f in fields:
        <code>{{'{' + f + '}'}}</code> <span class="alt">{{both('web.sms.template.field.' + f)[1]}}</span>
      % end
      </p>
      <button type="submit">{{!bi('web.sms.template.save')}}</button>
    </form>
  </section>
  <section id="campaigns" class="wide">
    <h2>{{!bi('web.sms.campaigns')}}</h2>
    <table>
      <thead><tr><th>{{!bi('web.sms.field.name')}}</th><th>{{!bi('web.sms.col.template')}}</th><th>{{!bi('web.sms.col.recipients')}}</th>
        <th>{{!bi('web.sms.col.schedule')}}</th><th>{{!bi('web.sms.col.state')}}</th><th>{{!bi('web.sms.col.counts')}}</th><th></th></tr></thead>
      <tbody id="campaign-rows"></tbody>
    </table>
    <form id="campaign-form" class="stack">
      <h3>{{!bi('web.sms.campaign.create')}}</h3>
      <label>{{!bi('web.sms.field.name')}} <input id="campaign-name" name="name" maxlength="64" required></label>
      <label>{{!bi('web.sms.col.template')}} <select id="campaign-template" name="template" required></select></label>
      <fieldset>
        <legend>{{!bi('web.sms.col.recipients')}}</legend>
        <label><input type="radio" name="to" value="group" checked> {{!bi('web.sms.recipients.group')}}</label>
        <select id="campaign-group" name="group">
          <option value="all">{{!bi('web.sms.group.all')}}</option>
          <option value="vip">{{!bi('web.sms.group.vip')}}</option>
          <option value="company">{{!bi('web.sms.group.company')}}</option>
        </select>
        <input id="campaign-company" name="company" maxlength="60" hidden>
        <label><input type="radio" name="to" value="numbers"> {{!bi('web.sms.recipients.numbers')}}</label>
        <textarea id="campaign-numbers" name="numbers" rows="3" placeholder="{{both('web.sms.numbers.help')[0]}}" hidden></textarea>
      </fieldset>
      <fieldset>
        <legend>{{!bi('web.sms.col.schedule')}}</legend>
        <label><input type="radio" name="when" value="now" checked> {{!bi('web.sms.schedule.now')}}</label>
        <label><input type="radio" name="when" value="date"> {{!bi('web.sms.schedule.date')}}</label>
        <input id="campaign-at" name="at" type="datetime-local" hidden>
      </fieldset>
      <label>{{!bi('web.sms.value.product')}} <input id="campaign-product" name="product" maxlength="200"></label>
      <label>{{!bi('web.sms.value.agent')}} <input id="campaign-agent" name="agent" maxlength="200"></label>
      <label>{{!bi('web.sms.value.date')}} <input id="campaign-date" name="date" type="date"></label>
      <button type="submit">{{!bi('web.sms.campaign.create')}}</button>
    </form>
  </section>
  <section id="optouts">
    <h2>{{!bi('web.sms.optouts')}}</h2>
    <table>
      <thead><tr><th>{{!bi('web.sms.col.number')}}</th><th>{{!bi('web.sms.col.source')}}</th><th>{{!bi('web.sms.col.time')}}</th><th></th></tr></thead>
      <tbody id="optout-rows"></tbody>
    </table>
    <form id="optout-form" class="inline">
      <input id="optout-number" name="number" maxlength="32" required inputmode="tel" aria-label="{{both('web.sms.field.to')[0]}}">
      <button type="submit">{{!bi('web.sms.optout.add')}}</button>
    </form>
  </section>
</main>
<script id="i18n" type="application/json">{{!i18n}}</script>
<script src="static/sms.js"></script>
