#ifndef PLEXOR_CLIBPQ_SHIM_H
#define PLEXOR_CLIBPQ_SHIM_H
#include <libpq-fe.h>

/* The PG_DIAG_* codes are character-literal macros, which Swift does not import. */
enum {
    PLEXOR_DIAG_SQLSTATE = 'C',
    PLEXOR_DIAG_MESSAGE_PRIMARY = 'M',
    PLEXOR_DIAG_MESSAGE_DETAIL = 'D',
    PLEXOR_DIAG_MESSAGE_HINT = 'H',
};
#endif
