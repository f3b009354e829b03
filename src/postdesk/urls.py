from django.contrib import admin
from django.urls import include, path

from postdesk.web import signin

urlpatterns = [
    # Before admin.site.urls: the admin's sign-in is ours, with every step (postdesk.signin.flow).
    path("admin/login/", signin.admin_sign_in),
    path("admin/", admin.site.urls),
    path("", include("postdesk.web.urls")),
]
