/* The part of troglobit's editline (https://github.com/troglobit/editline)
 * that Lix's REPL uses, over GNU readline: Debian has no editline package,
 * and Lix requires one to build (scripts/lix-sid.sh). Only what
 * lix/libcmd/repl*.cc names is here. */
#ifndef NCP_EDITLINE_SHIM_H
#define NCP_EDITLINE_SHIM_H

#include <stdio.h>
#include <readline/readline.h>
#include <readline/history.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CTL(x) ((x) & 0x1F)

typedef enum { CSdone = 0, CSeof, CSmove, CSdispatch, CSstay, CSsignal } el_status_t;
typedef el_status_t el_keymap_func_t(void);

/* Read by readline() before each line (stifle_history). */
extern int el_hist_size;

el_status_t el_bind_key(int key, el_keymap_func_t function);
void el_print_columns(int ac, char **av);
el_status_t el_ring_bell(void);

#ifdef __cplusplus
}
#endif

#endif
