"""The platform package holds no models; this module makes Django send it post_migrate."""
