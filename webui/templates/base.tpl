<!doctype html>
<html lang="{{lang}}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{title}}</title>
<link rel="stylesheet" href="static/style.css">
</head>
<body>
% if get('nav'):
<nav class="pages">
  <a href="./"{{!' aria-current="page"' if nav == 'dashboard' else ''}}>{{!bi('web.sms.nav.dashboard')}}</a>
  <a href="sms"{{!' aria-current="page"' if nav == 'sms' else ''}}>{{!bi('web.sms.nav.sms')}}</a>
</nav>
% end
{{!base}}
</body>
</html>
