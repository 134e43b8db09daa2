/* See editline.h: editline's key binding, column listing and bell over GNU
 * readline. */
#include "editline.h"

int el_hist_size = 1000;

static el_keymap_func_t *bound[256];

/* GNU readline's key functions take (count, key); editline's take nothing
 * and say what to do next. */
static int trampoline(int count, int key)
{
    (void) count;
    el_keymap_func_t *f = bound[key & 0xff];
    if (!f) return 0;
    stifle_history(el_hist_size);
    switch (f()) {
    case CSdone: rl_done = 1; break;
    case CSeof: rl_done = 1; break;
    default: break;
    }
    return 0;
}

el_status_t el_bind_key(int key, el_keymap_func_t function)
{
    bound[key & 0xff] = function;
    rl_bind_key(key, trampoline);
    return CSstay;
}

void el_print_columns(int ac, char **av)
{
    fputc('\n', rl_outstream ? rl_outstream : stdout);
    for (int i = 0; i < ac && av[i]; i++)
        fprintf(rl_outstream ? rl_outstream : stdout, "%s\n", av[i]);
    rl_on_new_line();
}

el_status_t el_ring_bell(void)
{
    rl_ding();
    return CSstay;
}
