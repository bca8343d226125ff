"""The hospital cache node ("storage server for recent images"): the centre's DICOMweb API served near the doctors,
filled on a miss, prefetched on request, bounded in bytes (LRU), kept across restarts, read-only when the centre
cannot be reached."""
