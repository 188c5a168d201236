"""The `/v1` routers; `complaintcore.api.app.create_app` includes each one."""
