app_name = __package__
urlpatterns: list = []
