"""The ingress: Host → route → revision → instance, proxied over pooled HTTP/1.1."""
