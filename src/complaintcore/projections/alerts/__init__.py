"""Alerts (DOMAIN.md "Alerts and escalation"; issue 15): the `alerts` table the webhooks deliver
from, kept as a feed projection by the one active runner (projections/runner.py).

- `model`: an alert and the alert names.
- `case_alerts`: the alerts a batch's events announce (received, decided, major, review
  requested, personal data erased).
- `clocks`: the clocks a case keeps (`alert_clocks`) and which alert each reads as of a day
  (due soon, overdue: the handling clock, the review's, each rectification action's).
- `projection`: the runner's parts (clocks and alerts per batch, the day's sweep) and the SQL.

Every alert is inserted once (`dedupe_key`) in the transaction that moves the checkpoint, by
the one runner holding the projection's advisory lock, so rows commit in id order.
"""

from complaintcore.projections.alerts.model import Alert as Alert
from complaintcore.projections.alerts.model import AlertName as AlertName
from complaintcore.projections.alerts.projection import NAME as NAME
from complaintcore.projections.alerts.projection import AlertProjection as AlertProjection
from complaintcore.projections.alerts.projection import alerts_projection as alerts_projection
