"""Master and workers over ZeroMQ: protocol, link, peers, shipping, security, supervisor."""
