"""Models of this domain arrive with their issue; the app's shape is fixed now."""
