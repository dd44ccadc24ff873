<?php
// A PHP client of Realplexor's IN line, written from REALPLEXOR.md §3–§4 (the
// way sites' PHP API talks to it): one HTTP request per call, the write side
// half-closed after it, the reply read to the end; anything but a 200 whose
// Content-Length matches its body is an error. The tests use it to check that
// Plexor's IN port answers such a client exactly as it expects.

class RealplexorClient
{
    private $host;
    private $port;
    private $namespace;
    private $login = null;
    private $password = null;

    public function __construct($host, $port, $namespace = "")
    {
        $this->host = $host;
        $this->port = $port;
        $this->namespace = $namespace;
    }

    public function logon($login, $password)
    {
        $this->login = $login;
        $this->password = $password;
    }

    /** $ids: a list of ids, or id => cursor; $onlyFor: ids that must also be listened to. */
    public function send($ids, $data, $onlyFor = array())
    {
        $list = array();
        foreach ($ids as $key => $value) {
            $list[] = is_int($key) ? $this->full($value) : $value . ":" . $this->full($key);
        }
        foreach ($onlyFor as $id) {
            $list[] = "*" . $this->full($id);
        }
        $this->request(implode(",", $list), json_encode($data));
    }

    /** Online ids (without the namespace) with their connection counts. */
    public function onlineWithCounters($prefixes = array())
    {
        $online = array();
        foreach ($this->lines("online" . $this->prefixList($prefixes)) as $line) {
            list($id, $count) = explode(" ", $line);
            $online[$this->strip($id)] = (int)$count;
        }
        return $online;
    }

    public function online($prefixes = array())
    {
        return array_keys($this->onlineWithCounters($prefixes));
    }

    /** Events after $from as [event, position, id]; from 0, the position to start from. */
    public function watch($from, $prefixes = array())
    {
        $events = array();
        foreach ($this->lines("watch " . (int)$from . $this->prefixList($prefixes)) as $line) {
            if (!preg_match('/^(\w+)\s+([^:]+):(\S+)$/', $line, $m)) {
                throw new Exception("unreadable watch line: $line");
            }
            $events[] = array($m[1], $m[2], $m[3] === "FAKE" ? $m[3] : $this->strip($m[3]));
        }
        return $events;
    }

    private function lines($command)
    {
        $body = $this->request("", $command . "\n");
        return array_values(array_filter(explode("\n", $body), 'strlen'));
    }

    private function prefixList($prefixes)
    {
        $list = "";
        foreach ($prefixes as $prefix) {
            $list .= " " . $this->full($prefix);
        }
        return $list;
    }

    private function full($id)
    {
        return ($this->login !== null ? $this->login . "_" : "") . $this->namespace . $id;
    }

    private function strip($id)
    {
        $prefix = ($this->login !== null ? $this->login . "_" : "") . $this->namespace;
        return substr($id, 0, strlen($prefix)) === $prefix ? substr($id, strlen($prefix)) : $id;
    }

    private function request($list, $body)
    {
        $identifier = ($this->login !== null ? $this->login . ":" . $this->password . "@" : "") . $list;
        $socket = @fsockopen($this->host, $this->port, $errno, $errstr, 5);
        if (!$socket) {
            throw new Exception("cannot connect to {$this->host}:{$this->port}: $errstr");
        }
        stream_set_timeout($socket, 10);
        fwrite($socket, "POST / HTTP/1.1\r\nHost: {$this->host}\r\nContent-Length: " . strlen($body) . "\r\n"
            . "X-Realplexor: identifier=$identifier\r\n\r\n" . $body);
        stream_socket_shutdown($socket, STREAM_SHUT_WR);
        $reply = stream_get_contents($socket);
        fclose($socket);
        $parts = explode("\r\n\r\n", $reply, 2);
        if (count($parts) != 2 || !preg_match('{^HTTP/1\.[01] (\d+)}', $parts[0], $status)) {
            throw new Exception("not an HTTP reply: " . substr($reply, 0, 100));
        }
        if ($status[1] != "200") {
            throw new Exception("status {$status[1]}: " . trim($parts[1]));
        }
        if (!preg_match('/\r\nContent-Length: (\d+)/i', $parts[0], $length) || (int)$length[1] != strlen($parts[1])) {
            throw new Exception("the Content-Length does not match the body");
        }
        return $parts[1];
    }
}
