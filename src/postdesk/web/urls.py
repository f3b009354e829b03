from django.contrib.auth import views as auth_views
from django.urls import path

from postdesk.web import views
from postdesk.web import mailboxes, quarantine  # the admin pages
from postdesk.web import live  # polled by static/postdesk/live.js
from postdesk.web import account, lockouts, oauth_connect, replies, signin, signins, sso, two_factor
from postdesk.web import notifications
from postdesk.web import canned  # canned replies, admins only
from postdesk.web import queue_actions  # bulk actions, saved views, merge (desk.bulk, desk.filters, desk.merge)
from postdesk.web import reading  # customer page and previews
from postdesk.web import request_actions

app_name = "postdesk_web"

urlpatterns = [
    path("login/", signin.SignInView.as_view(), name="login"),
    path("login/sso/", sso.start, name="sso_start"),
    path("login/sso/callback/", sso.callback, name="sso_callback"),
    path("login/code/", two_factor.signin_code, name="signin_code"),
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
    path("requests/<int:number>/reply/", replies.reply, name="reply"),
    path("requests/<int:number>/note/", replies.note, name="note"),
    path("requests/<int:number>/live/", live.request_live, name="request_live"),
    path("attachments/<int:attachment_id>/", views.attachment_download, name="attachment"),
    path("messages/<int:message_id>/raw/", views.message_raw, name="message_raw"),
    # Admins only (web/mailboxes.admin_required).
    path("mailboxes/", mailboxes.mailbox_list, name="mailbox_list"),
    path("mailboxes/add/", mailboxes.mailbox_add, name="mailbox_add"),
    path("mailboxes/<int:pk>/", mailboxes.mailbox_detail, name="mailbox_detail"),
    path("mailboxes/<int:pk>/edit/", mailboxes.mailbox_edit, name="mailbox_edit"),
    path("mailboxes/<int:pk>/test/", mailboxes.mailbox_test, name="mailbox_test"),
    path("mailboxes/<int:pk>/connect/", oauth_connect.connect, name="mailbox_connect"),
    path("mailboxes/oauth/callback/", oauth_connect.callback, name="oauth_callback"),
    path("quarantine/", quarantine.quarantine_list, name="quarantine"),
    path("quarantine/<int:pk>/", quarantine.quarantine_detail, name="quarantine_detail"),
    path("quarantine/<int:pk>/raw/", quarantine.quarantine_raw, name="quarantine_raw"),
    path("quarantine/<int:pk>/rerun/", quarantine.quarantine_rerun, name="quarantine_rerun"),
    path("quarantine/<int:pk>/discard/", quarantine.quarantine_discard, name="quarantine_discard"),
    path("staff/lockouts/", lockouts.lockout_list, name="lockouts"),
    path("staff/lockouts/unlock/", lockouts.lockout_unlock, name="lockout_unlock"),
    path("staff/signins/", signins.signin_log, name="signins"),
    path("staff/signins/sessions/<int:pk>/end/", signins.end_session, name="signins_session_end"),
    # Every member: their own account and sessions (web/account.py).
    path("account/", account.account, name="account"),
    path("account/sessions/<int:pk>/end/", account.end_session, name="account_session_end"),
    path("account/sessions/end-others/", account.end_other_sessions, name="account_sessions_end_others"),
    path("staff/<str:name>/reset-2fa/", two_factor.staff_reset_two_factor, name="staff_reset_2fa"),
    path("account/two-factor/", two_factor.account_two_factor, name="two_factor"),
    path("account/notifications/", notifications.notification_preferences, name="notifications"),
    path("staff/notification-account/", notifications.notification_account, name="notification_account"),  # admins
    path("messages/<int:message_id>/body/", views.message_body, name="message_body"),
    path("inline/<str:token>/", views.inline_image, name="inline_image"),
    path("metrics", views.metrics_view, name="metrics"),
    # Answering (answer helper): drafts as one types, canned replies (admins manage them).
    path("requests/<int:number>/draft/", replies.draft, name="draft"),
    path("requests/<int:number>/canned/", replies.insert_canned, name="insert_canned"),
    path("staff/canned/", canned.canned_list, name="canned_list"),
    path("staff/canned/add/", canned.canned_add, name="canned_add"),
    path("staff/canned/<int:pk>/", canned.canned_edit, name="canned_edit"),
    path("staff/canned/<int:pk>/delete/", canned.canned_delete, name="canned_delete"),
    path("requests/bulk/", queue_actions.bulk_action, name="bulk"),
    path("requests/<int:number>/merge/", queue_actions.merge_request, name="merge"),
    path("views/save/", queue_actions.save_view, name="view_save"),
    path("views/<int:pk>/rename/", queue_actions.rename_view, name="view_rename"),
    path("views/<int:pk>/delete/", queue_actions.delete_view, name="view_delete"),
    path("account/details/", account.save_details, name="account_details"),
    path("account/password/", account.change_password, name="account_password"),
    # Reading: the customer's page, attachment previews (web/reading.py).
    path("customers/<int:customer_id>/", reading.customer_page, name="customer"),
    path("customers/<int:customer_id>/note/", reading.customer_note, name="customer_note"),
    path("attachments/<int:attachment_id>/view/", reading.image_view, name="attachment_view"),
    path("attachments/<int:attachment_id>/pdf/", reading.pdf_frame, name="pdf_frame"),
    path("preview/<str:token>/", reading.pdf_bytes, name="pdf_bytes"),
    path("requests/<int:number>/wait/", request_actions.wait, name="wait"),
    path("requests/<int:number>/priority/", request_actions.set_priority, name="priority"),
    path("requests/<int:number>/tags/add/", request_actions.add_tag, name="tag_add"),
    path("requests/<int:number>/tags/remove/", request_actions.remove_tag, name="tag_remove"),
]
