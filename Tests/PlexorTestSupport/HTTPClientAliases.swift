@_exported import PlexorHTTPClient

public typealias TestHTTPClient = HTTPClientConnection
public typealias TestResponse = HTTPClientResponse
