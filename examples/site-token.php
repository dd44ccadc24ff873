<?php
// A Plexor chat token for your signed-in user: a JWT (HS256) signed with your site's secret.
function plexor_token(string $secret, string $sub, string $name, bool $mod = false): string {
    $b64 = fn(string $bytes) => rtrim(strtr(base64_encode($bytes), '+/', '-_'), '=');
    $header = $b64(json_encode(['alg' => 'HS256', 'typ' => 'JWT']));
    $claims = $b64(json_encode(['sub' => $sub, 'name' => $name, 'mod' => $mod, 'exp' => time() + 300]));
    $signature = $b64(hash_hmac('sha256', "$header.$claims", $secret, true));
    return "$header.$claims.$signature";
}
echo plexor_token(getenv('PLEXOR_SITE_SECRET'), $argv[1], $argv[2]), "\n";
