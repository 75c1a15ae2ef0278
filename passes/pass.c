/* placeholder: replaced by the pass manager */
typedef int nnc_pass_placeholder;
