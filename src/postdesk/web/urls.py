from django.contrib.auth import views as auth_views
from django.urls import path

from postdesk.web import views

app_name = "postdesk_web"

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(template_name="postdesk/login.html", redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),  # POST only (Django 5)
    path("", views.home, name="home"),
    path("queue/mailbox/<str:name>/", views.mailbox_queue, name="mailbox"),
    path("queue/<slug:queue>/", views.queue, name="queue"),
    path("requests/<int:number>/", views.request_detail, name="request"),
    path("requests/<int:number>/take/", views.take, name="take"),
    path("requests/<int:number>/assign/", views.assign, name="assign"),
    path("requests/<int:number>/unassign/", views.unassign, name="unassign"),
    path("requests/<int:number>/close/", views.close, name="close"),
    path("requests/<int:number>/reopen/", views.reopen, name="reopen"),
    path("attachments/<int:attachment_id>/", views.attachment_download, name="attachment"),
    path("messages/<int:message_id>/raw/", views.message_raw, name="message_raw"),
    path("messages/<int:message_id>/body/", views.message_body, name="message_body"),
    path("inline/<str:token>/", views.inline_image, name="inline_image"),
    path("metrics", views.metrics_view, name="metrics"),
]
