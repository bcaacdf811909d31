# communicate: ligand-receptor communication -> <output>/<sample>/communication/.


rule communicate:
    input:
        step_inputs("communicate"),
    output:
        directory(f"{OUT}/{{sample}}/communication"),
    log:
        "logs/communicate/{sample}.log",
    threads: res("communicate", "threads")
    resources:
        mem_mb=res("communicate", "mem_mb"),
        runtime=res("communicate", "runtime"),
    params:
        command=step_command("communicate"),
    shell:
        "{params.command} > {log} 2>&1"
