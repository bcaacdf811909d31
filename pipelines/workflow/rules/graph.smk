# graph: spatial neighbour graph -> <output>/<sample>/graph/.


rule graph:
    input:
        step_inputs("graph"),
    output:
        directory(f"{OUT}/{{sample}}/graph"),
    log:
        "logs/graph/{sample}.log",
    threads: res("graph", "threads")
    resources:
        mem_mb=res("graph", "mem_mb"),
        runtime=res("graph", "runtime"),
    params:
        command=step_command("graph"),
    shell:
        "{params.command} > {log} 2>&1"
