% rebase('base.tpl', title=both('web.login.title')[0] + ' - ' + both('web.title')[0], lang=lang)
<main class="login">
  <h1>{{!bi('web.title')}}</h1>
  % if error:
  <p class="error" role="alert">{{error[0]}} <span class="alt">{{error[1]}}</span></p>
  % end
  <form method="post" action="login">
    <label>{{!bi('web.login.user')}}
      <input name="user" value="{{user}}" autocomplete="username" maxlength="64" required autofocus></label>
    <label>{{!bi('web.login.password')}}
      <input name="password" type="password" autocomplete="current-password" maxlength="256" required></label>
    <button type="submit">{{!bi('web.login.submit')}}</button>
  </form>
</main>
