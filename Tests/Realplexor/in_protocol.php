<?php
// php in_protocol.php IN_PORT WAIT_PORT NAMESPACE: send, online (with and without
// counters), watch and authentication through Plexor's IN port, the way a site's
// PHP code does. Prints what it saw as JSON; the Swift test checks it.

require __DIR__ . "/RealplexorClient.php";

list(, $inPort, $waitPort, $ns) = $argv;
$result = array();

// Anonymous sends: to two ids with a cursor (ignored), and one only for listeners of "vip".
$anonymous = new RealplexorClient("127.0.0.1", $inPort, $ns);
$anonymous->send(array("room", "news" => "1795682590.55"), array("text" => "hello"));
$anonymous->send(array("room"), "for vips", array("vip"));

// A browser present on "lobby" (a WAIT request held open) makes it online.
$browser = fsockopen("127.0.0.1", $waitPort);
fwrite($browser, "GET /?identifier={$ns}lobby&ncrnd=1 HTTP/1.1\r\nHost: rpl\r\n\r\n");
$start = $anonymous->watch(0);
$result["watch0"] = $start;
$deadline = microtime(true) + 20;
do {
    $online = $anonymous->onlineWithCounters(array(""));
    usleep(100000);  // polling the server as a site's cron would, bounded by the deadline
} while (!isset($online["lobby"]) && microtime(true) < $deadline);
$result["online_counters"] = $online;
$result["online"] = $anonymous->online(array(""));
$result["watch"] = $anonymous->watch($start[0][1], array(""));
fclose($browser);

// A login sends to its own ids (the client prefixes them); a wrong password is refused.
$site = new RealplexorClient("127.0.0.1", $inPort, $ns);
$site->logon("site", "secret");
$site->send(array("private"), 42);
$wrong = new RealplexorClient("127.0.0.1", $inPort, $ns);
$wrong->logon("site", "nope");
try {
    $wrong->send(array("private"), 1);
    $result["wrong_password"] = "accepted";
} catch (Exception $e) {
    $result["wrong_password"] = $e->getMessage();
}
echo json_encode($result), "\n";
