/*
 * insn_count.c - a qemu TCG plugin that counts the guest instructions executed, exactly.
 *
 *   qemu-system-arm -plugin ./insn_count.so,outfile=COUNT.txt ...
 *
 * Every instruction of every translated block gets an inline "add 1" to one 64-bit counter (no
 * callback per instruction, and exact even when a block is left early by an exception); at exit
 * the count is written to `outfile` (default: stderr). One vCPU: the Cortex-M machines have one.
 * Built as C11 (the header has an anonymous union) against include/qemu/qemu-plugin.h of the
 * qemu source that matches the installed qemu (run.sh fetches it with apt-get source).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <qemu-plugin.h>

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

static uint64_t executed;
static char outfile[1024];

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    size_t i, n = qemu_plugin_tb_n_insns(tb);
    (void)id;
    for (i = 0; i < n; i++)
        qemu_plugin_register_vcpu_insn_exec_inline(qemu_plugin_tb_get_insn(tb, i),
                                                   QEMU_PLUGIN_INLINE_ADD_U64, &executed, 1);
}

static void write_count(qemu_plugin_id_t id, void *data)
{
    FILE *f = outfile[0] != '\0' ? fopen(outfile, "w") : stderr;
    (void)id;
    (void)data;
    if (f == NULL) {
        fprintf(stderr, "insn_count: cannot write %s\n", outfile);
        return;
    }
    fprintf(f, "%" PRIu64 "\n", executed);
    if (f != stderr)
        fclose(f);
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc,
                                           char **argv)
{
    int i;
    (void)info;
    for (i = 0; i < argc; i++) {
        if (strncmp(argv[i], "outfile=", 8) == 0 && strlen(argv[i] + 8) < sizeof outfile) {
            strcpy(outfile, argv[i] + 8);
        } else {
            fprintf(stderr, "insn_count: unknown or too long argument '%s' (outfile=PATH)\n", argv[i]);
            return -1;
        }
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_atexit_cb(id, write_count, NULL);
    return 0;
}
