// The dashboard's settings. This file is the only one to change when the
// dashboard is hosted away from the API (see README, "Dashboard").
//
// RSVP_API_BASE: the HTTP API's base URL, without a trailing slash.
//   ""  the page's own origin: the local stack serves both (make dev).
//   A deployed stack: its ApiUrl output, e.g.
//   "https://abc123.execute-api.us-east-1.amazonaws.com"; the page's origin
//   must then be the stack's DashboardOrigin parameter (CORS).
window.RSVP_API_BASE = "";
