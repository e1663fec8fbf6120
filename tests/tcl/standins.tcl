# Recording stand-ins for the Vivado and Vitis HLS tcl commands accelgen's generated scripts use.
#
#   tclsh standins.tcl OUT.json SCRIPT.tcl
#
# sources SCRIPT.tcl with every vendor command replaced by a proc that records its arguments and
# keeps a small model of the project (cells, properties, connections, automation, runs), then
# writes the model as JSON to OUT.json: {"calls": [[cmd, arg...], ...], "cells": {...}, ...,
# "exit": "exit" | "error", "error": message}. A command with no stand-in is an error.
#
# The tool's answers come from environment variables:
#   STANDIN_SHIPPED_BOARDS  board parts the "installation" has, space separated
#   STANDIN_WNS, STANDIN_WHS  the slack get_timing_paths reports (default 0.5)
# A board repository holds board part B when it contains a file named boards.txt listing B.

namespace eval ::si {
    variable calls {}
    variable props {}        ;# dict object -> dict property -> value
    variable cells {}        ;# dict name -> vlnv
    variable nets {}         ;# list of {from to}
    variable automation {}   ;# list of {rule config object}
    variable params {}
    variable project {}
    variable reports {}
    variable done 0
    variable sources {}      ;# Verilog files added to the project
}

proc ::si::record {cmd args} { lappend ::si::calls [linsert $args 0 $cmd] }
proc ::si::env {name default} {
    if {[info exists ::env($name)] && $::env($name) ne ""} { return $::env($name) }
    return $default
}

proc ::si::json_str {s} {
    set out "\""
    foreach ch [split $s ""] {
        scan $ch %c code
        if {$ch eq "\""} { append out "\\\"" } elseif {$ch eq "\\"} { append out "\\\\" } elseif {$code < 32} {
            append out [format "\\u%04x" $code]
        } else { append out $ch }
    }
    return "$out\""
}
proc ::si::json_list {items} {
    set parts {}
    foreach i $items { lappend parts [::si::json_str $i] }
    return "\[[join $parts ,]\]"
}
proc ::si::json_dict {d {nested 0}} {
    set parts {}
    dict for {k v} $d {
        if {$nested} { set v [::si::json_dict $v] } else { set v [::si::json_str $v] }
        lappend parts "[::si::json_str $k]:$v"
    }
    return "\{[join $parts ,]\}"
}
proc ::si::dump {path how message} {
    set calls {}
    foreach c $::si::calls { lappend calls [::si::json_list $c] }
    set nets {}
    foreach n $::si::nets { lappend nets [::si::json_list $n] }
    set auto {}
    foreach a $::si::automation {
        lassign $a rule config obj
        lappend auto "\{\"rule\":[::si::json_str $rule],\"config\":[::si::json_dict $config],\"object\":[::si::json_str $obj]\}"
    }
    set f [open $path w]
    puts $f "\{\"exit\":[::si::json_str $how],\"error\":[::si::json_str $message],"
    puts $f "\"calls\":\[[join $calls ,\n]\],"
    puts $f "\"cells\":[::si::json_dict $::si::cells],\"properties\":[::si::json_dict $::si::props 1],"
    puts $f "\"nets\":\[[join $nets ,]\],\"automation\":\[[join $auto ,]\],"
    puts $f "\"params\":[::si::json_dict $::si::params],\"project\":[::si::json_dict $::si::project],"
    puts $f "\"reports\":[::si::json_dict $::si::reports]\}"
    close $f
}

proc ::si::set_prop {obj name value} {
    if {![dict exists $::si::props $obj]} { dict set ::si::props $obj {} }
    dict set ::si::props $obj $name $value
}
proc ::si::get_prop {obj name} {
    if {[dict exists $::si::props $obj $name]} { return [dict get $::si::props $obj $name] }
    return ""
}

# -- both tools --------------------------------------------------------------------------------
rename exit ::si::real_exit
proc exit {args} { ::si::record exit {*}$args; set ::si::done 1; return -code error -errorcode {STANDIN EXIT} "exit" }
proc unknown {args} { error "no stand-in for the vendor command '[lindex $args 0]'" }

# -- Vitis HLS -----------------------------------------------------------------------------------
proc export_design {args} {
    ::si::record export_design {*}$args
    set i [lsearch $args -output]
    if {$i >= 0} { close [open [lindex $args [expr {$i + 1}]] w] }  ;# the IP archive
}
foreach cmd {open_project set_top add_files open_solution set_part create_clock config_export
             csim_design csynth_design cosim_design} {
    proc $cmd {args} [format {::si::record %s {*}$args} $cmd]
}

# -- Vivado --------------------------------------------------------------------------------------
proc set_param {name value} { ::si::record set_param $name $value; dict set ::si::params $name $value }
proc create_project {args} {
    ::si::record create_project {*}$args
    set pos {}
    for {set i 0} {$i < [llength $args]} {incr i} {
        set a [lindex $args $i]
        if {$a eq "-part"} { incr i; dict set ::si::project part [lindex $args $i] } elseif {$a eq "-force"} {
        } else { lappend pos $a }
    }
    lassign $pos name dir
    dict set ::si::project name $name
    dict set ::si::project dir $dir
    file mkdir $dir
}
proc current_project {} { return project }
proc current_fileset {} { return sources_1 }
proc get_board_parts {args} {
    ::si::record get_board_parts {*}$args
    set want [lindex $args end]
    set known [::si::env STANDIN_SHIPPED_BOARDS ""]
    if {[dict exists $::si::params board.repoPaths]} {
        foreach repo [dict get $::si::params board.repoPaths] {
            set listing [file join $repo boards.txt]
            if {[file exists $listing]} {
                set f [open $listing]; append known " " [read $f]; close $f
            }
        }
    }
    return [lsearch -all -inline -exact $known $want]
}
proc set_property {args} {
    ::si::record set_property {*}$args
    if {[lindex $args 0] eq "-dict"} {
        set obj [lindex $args 2]
        foreach {k v} [lindex $args 1] { ::si::set_prop $obj $k $v }
    } else {
        lassign $args name value obj
        ::si::set_prop $obj $name $value
    }
}
proc get_property {name obj} {
    if {$name eq "PROGRESS"} { return "100%" }
    if {$name eq "DIRECTORY"} { return [file join [dict get $::si::project dir] runs $obj] }
    if {$name eq "SLACK"} { return [::si::get_prop $obj SLACK] }
    return [::si::get_prop $obj $name]
}
proc create_bd_design {name} { ::si::record create_bd_design $name; dict set ::si::project bd $name }
proc create_bd_cell {args} {
    ::si::record create_bd_cell {*}$args
    set ref [lsearch $args -reference]
    if {$ref >= 0} {
        ;# a module reference: the module must be in a source file added to the project
        set module [lindex $args [expr {$ref + 1}]]
        set found 0
        foreach src $::si::sources {
            set f [open $src]; set text [read $f]; close $f
            if {[regexp -line "^module\\s+${module}\\M" $text]} { set found 1 }
        }
        if {!$found} { error "create_bd_cell: no module $module in the project's sources" }
        dict set ::si::cells [lindex $args end] "module:$module"
        return
    }
    set vlnv [lindex $args [expr {[lsearch $args -vlnv] + 1}]]
    dict set ::si::cells [lindex $args end] $vlnv
}
proc add_files {args} {
    ::si::record add_files {*}$args
    foreach a $args {
        if {[string index $a 0] eq "-"} { continue }
        foreach f $a {
            if {[file extension $f] eq ".v"} {
                if {![file isfile $f]} { error "add_files: no such file $f" }
                lappend ::si::sources $f
            }
        }
    }
}
proc get_bd_cells {name} {
    if {![dict exists $::si::cells $name]} { error "get_bd_cells: no cell $name" }
    return $name
}
proc get_bd_intf_pins {name} { return $name }
proc connect_bd_intf_net {from to} { ::si::record connect_bd_intf_net $from $to; lappend ::si::nets [list $from $to] }
proc apply_bd_automation {args} {
    ::si::record apply_bd_automation {*}$args
    set rule [lindex $args [expr {[lsearch $args -rule] + 1}]]
    set config [lindex $args [expr {[lsearch $args -config] + 1}]]
    lappend ::si::automation [list $rule $config [lindex $args end]]
}
foreach cmd {update_ip_catalog update_compile_order assign_bd_address validate_bd_design save_bd_design wait_on_run open_run} {
    proc $cmd {args} [format {::si::record %s {*}$args} $cmd]
}
proc get_files {name} { return $name }
proc make_wrapper {args} {
    ::si::record make_wrapper {*}$args
    set p $::si::project
    set gen [file join [dict get $p dir] "[dict get $p name].gen" sources_1 bd [dict get $p bd]]
    file mkdir [file join $gen hdl] [file join $gen hw_handoff]
    close [open [file join $gen hw_handoff [dict get $p bd].hwh] w]
    close [open [file join $gen hdl "[dict get $p bd]_wrapper.v"] w]
}
proc get_runs {name} { return $name }
proc launch_runs {args} {
    ::si::record launch_runs {*}$args
    set dir [file join [dict get $::si::project dir] runs [lindex $args 0]]
    file mkdir $dir
    close [open [file join $dir design_1_wrapper.bit] w]
}
proc get_timing_paths {args} {
    ::si::record get_timing_paths {*}$args
    set path [expr {"-hold" in $args ? "hold_path" : "setup_path"}]
    ::si::set_prop $path SLACK [::si::env [expr {$path eq "hold_path" ? "STANDIN_WHS" : "STANDIN_WNS"}] 0.5]
    return $path
}
proc ::si::timing_text {} {
    set wns [::si::env STANDIN_WNS 0.5]
    set whs [::si::env STANDIN_WHS 0.5]
    set tns [expr {min(0.0, $wns) * 7}]
    set ths [expr {min(0.0, $whs) * 3}]
    set nf [expr {$wns < 0 ? 7 : 0}]
    set nh [expr {$whs < 0 ? 3 : 0}]
    set cols {WNS(ns) TNS(ns) {TNS Failing Endpoints} {TNS Total Endpoints} WHS(ns) THS(ns) {THS Failing Endpoints} {THS Total Endpoints} WPWS(ns) TPWS(ns) {TPWS Failing Endpoints} {TPWS Total Endpoints}}
    set vals [list [format %.3f $wns] [format %.3f $tns] $nf 2048 [format %.3f $whs] [format %.3f $ths] $nh 2048 1.125 0.000 0 1024]
    set head ""; set dash ""; set row ""
    foreach c $cols v $vals {
        set w [expr {max([string length $c], 7)}]
        append head [format "    %*s" $w $c]; append dash [format "    %*s" $w [string repeat - [string length $c]]]
        append row [format "    %*s" $w $v]
    }
    set verdict [expr {$nf || $nh ? "Timing constraints are not met." : "All user specified timing constraints are met."}]
    return "Timing Report\n\n------------------------------------------------------------------------------------------------\n| Design Timing Summary\n| ---------------------\n------------------------------------------------------------------------------------------------\n\n$head\n$dash\n$row\n\n\n$verdict\n"
}
foreach cmd {report_utilization report_timing_summary} {
    proc $cmd {args} [format {
        ::si::record %1$s {*}$args
        set file [lindex $args [expr {[lsearch $args -file] + 1}]]
        set f [open $file w]
        if {"%1$s" eq "report_timing_summary"} { puts -nonewline $f [::si::timing_text] }
        close $f
        dict set ::si::reports %1$s $file
    } $cmd]
}

# -- run the script ------------------------------------------------------------------------------
lassign $argv out script
set rc [catch {uplevel #0 [list source $script]} message]
if {$::si::done} {
    ::si::dump $out exit ""
    ::si::real_exit 0
} elseif {$rc} {
    puts "ERROR: $message"
    ::si::dump $out error $message
    ::si::real_exit 1
}
::si::dump $out end ""
