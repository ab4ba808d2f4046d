package http1

// The statuses the runner's servers answer and its clients look at.
const (
	StatusContinue                = 100
	StatusOK                      = 200
	StatusMovedPermanently        = 301
	StatusBadRequest              = 400
	StatusUnauthorized            = 401
	StatusForbidden               = 403
	StatusNotFound                = 404
	StatusMethodNotAllowed        = 405
	StatusConflict                = 409
	StatusRequestEntityTooLarge   = 413
	StatusExpectationFailed       = 417
	StatusHeaderFieldsTooLarge    = 431
	StatusInternalServerError     = 500
	StatusNotImplemented          = 501
	StatusServiceUnavailable      = 503
	StatusGatewayTimeout          = 504
	StatusHTTPVersionNotSupported = 505
)

// statusText holds the reason phrases of RFC 9110 section 15.
var statusText = map[int]string{
	100: "Continue", 101: "Switching Protocols", 103: "Early Hints",
	200: "OK", 201: "Created", 202: "Accepted", 203: "Non-Authoritative Information",
	204: "No Content", 205: "Reset Content", 206: "Partial Content",
	300: "Multiple Choices", 301: "Moved Permanently", 302: "Found", 303: "See Other",
	304: "Not Modified", 307: "Temporary Redirect", 308: "Permanent Redirect",
	400: "Bad Request", 401: "Unauthorized", 402: "Payment Required", 403: "Forbidden",
	404: "Not Found", 405: "Method Not Allowed", 406: "Not Acceptable",
	407: "Proxy Authentication Required", 408: "Request Timeout", 409: "Conflict",
	410: "Gone", 411: "Length Required", 412: "Precondition Failed",
	413: "Request Entity Too Large", 414: "Request URI Too Long",
	415: "Unsupported Media Type", 416: "Requested Range Not Satisfiable",
	417: "Expectation Failed", 421: "Misdirected Request", 422: "Unprocessable Entity",
	426: "Upgrade Required", 428: "Precondition Required", 429: "Too Many Requests",
	431: "Request Header Fields Too Large",
	500: "Internal Server Error", 501: "Not Implemented", 502: "Bad Gateway",
	503: "Service Unavailable", 504: "Gateway Timeout", 505: "HTTP Version Not Supported",
}

// StatusText is the reason phrase of code, as net/http's StatusText says
// it; "" for a code it does not know.
func StatusText(code int) string { return statusText[code] }
