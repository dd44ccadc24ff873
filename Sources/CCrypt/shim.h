// crypt_r from libxcrypt (Debian's libcrypt): the hashes of htpasswd-style users files.
#include <crypt.h>
