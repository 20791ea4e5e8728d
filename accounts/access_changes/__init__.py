"""Staff access changed outside four eyes: the database records it, this package alerts on it (issue 11, item 4).

The recording is SQL (`accounts/sql/access_change_triggers.sql`): triggers on
roles, single permissions, staff flags and role definitions write an
`access.changed` audit row whatever path made the change. Alerting is Python
(`audit.alerts.alert_raise`: sealed event, counter, email), so a beat task turns
each unapproved row into one alert; `AccessChangeAlert` remembers which.
"""
