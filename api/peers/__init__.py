"""The peer documents served as they are written, as views of fleetpipe's own runs: each a
package with its router, shapes, auth and error shape, under the document's own paths."""
